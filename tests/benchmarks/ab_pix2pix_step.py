"""A/B: pix2pix 64² training step at batch 16 on the CPU (issue 12: "no slower than 81c211e").

Run it alternately with two installs: `python tests/benchmarks/ab_pix2pix_step.py 20 LABEL`."""
import sys, time, torch
from bench import registry
from bench.api import Batch, training_step
torch.manual_seed(0)
method = registry.create_method("pix2pix", size=64, batch_size=16)
g = torch.Generator().manual_seed(0)
L = torch.rand(16, 1, 64, 64, generator=g) * 2 - 1
ab = (torch.rand(16, 2, 64, 64, generator=g) - 0.5) * 0.6
batch = Batch(L, ab)
method.train_mode()
for _ in range(2):
    training_step(method, batch, 0.25)
times = []
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 8):
    start = time.perf_counter(); training_step(method, batch, 0.25); times.append(time.perf_counter() - start)
times.sort()
print(f"{sys.argv[2] if len(sys.argv) > 2 else ''} median {times[len(times)//2]*1000:.0f} ms, best {times[0]*1000:.0f} ms")
