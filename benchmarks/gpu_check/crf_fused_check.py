"""Quick CUDA check of the fused mCRF kernel against the offset loop: agreement and time (forward + backward),
with torch alone (no nnU-Net): python3 benchmarks/gpu_check/crf_fused_check.py [OUT_JSON]"""
import json, sys, time, types
from pathlib import Path

import torch

root = Path(__file__).resolve().parents[2]
# The losses without nnunetv2_paseg/__init__.py, which imports the trainers (and nnU-Net).
package = types.ModuleType("nnunetv2_paseg")
package.__path__ = [str(root / "nnunetv2_paseg")]
sys.modules["nnunetv2_paseg"] = package
from nnunetv2_paseg.losses.crf import MultiViewGatedCRFLoss  # noqa: E402

device = "cuda" if torch.cuda.is_available() else "cpu"
shapes = [(2, 2, 64, 64, 48), (2, 2, 128, 128, 128)] if device == "cuda" else [(1, 2, 6, 5, 4)]
rows = []
for shape in shapes:
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(*shape, generator=g), 1).to(device)
    image = torch.randn(shape[0], 1, *shape[2:], generator=g).to(device)
    loss = MultiViewGatedCRFLoss(radius=5, sigma_xy=5.0, spacing=(1.0, 1.0, 1.0))
    row = {"shape": shape}
    grads = {}
    for fused in (True, False):
        loss.use_fused_kernel = fused
        times = []
        for i in range(8 if device == "cuda" else 1):
            p = probs.clone().requires_grad_()
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.autocast(device, enabled=device == "cuda"):
                value = loss(p, image)
            value.backward()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        name = "fused" if fused else "loop"
        row[name + "_first_s"] = times[0]
        row[name + "_s"] = sorted(times[1:])[len(times[1:]) // 2] if len(times) > 1 else times[0]
        row[name + "_value"] = float(value)
        grads[name] = p.grad
    row["grad_rel_diff"] = float((grads["fused"] - grads["loop"]).abs().max() / grads["loop"].abs().max())
    print(json.dumps(row), flush=True)
    rows.append(row)
if len(sys.argv) > 1:
    Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))
