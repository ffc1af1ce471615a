"""The evaluation engine, in one place:

- ``metric_pass``: every metric in one batched pass over (prediction, target) pairs;
- ``test_split``: a trained method colorizes the test split as it is scored (sharded over ranks), and its samples;
- ``test_time``: the per-image seeds of test-time randomness (shared with ``bench colorize``);
- ``references``: the reference rows (gray input, ground truth), scored by the same pass on the same images;
- ``folders``: ``bench score``, the same pass over two folders of image files.
"""
