"""A blind colorization Turing test: a static study site, raters' votes, fooling rates.

``bench turing --runs DIR --out STUDY`` builds the study (``study.build_study``):

    STUDY/design.json           the answer key: trial -> method run, image and real side. Never published.
    STUDY/site/index.html       the page raters open (file:// or any static host; no server, no CDN)
    STUDY/site/trials.js        the trial list, as a global (file:// cannot fetch JSON): ids and image pairs only
    STUDY/site/static/          turing.js, turing.css
    STUDY/site/img/<random>.png every image of every trial, under a random name of its own (uncompressed:
                                the two files of a trial are the same size)

By default each rater's block is one row of a Latin square: every test image once, each with another
method (no photo is judged twice, so none can be learned). Each trial shows one test image twice: the
real photo and one method's colorization (or, in a catch trial, the gray input), left/right at random,
and asks which one is the real photo. The page knows nothing else: no method names, no real side. Votes
stay in the browser until the rater exports them as one JSON file. ``bench turing score STUDY
votes/*.json`` (``votes.score_study``) maps the votes back through design.json: the fooling rate per
method (share of its trials where the colorization was picked as real; 50 % = indistinguishable), pooled
with a 95 % interval from a two-way cluster bootstrap over raters and images, and per rater with Wilson's,
after dropping raters who fail the catch trials. ``--report SITE`` renders the leaderboard with it as a
column.

Modules: ``design`` (arms, images and the balanced seeded design), ``study`` (writing the site),
``votes`` (votes, fooling rates, the leaderboard column).
"""
