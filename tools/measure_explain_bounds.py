"""The measurements behind the bounds in tests/training/explain/test_explain_keras.py.

Usage: PYTHONPATH=. python tools/measure_explain_bounds.py 0 1 2 3 4   (one JSON line per seed; ~25 s a seed)
"""
from pathlib import Path
import sys, time, json; sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np, cv2, shutil, tempfile
from explain_data import *
from edgecnn.training.explain.gradcam import grad_cam
from edgecnn.explain.agreement import compare_maps, summarize
from edgecnn.runtime.explain.heatmaps import normalize_map, resize_map, mass_inside
from edgecnn.runtime.explain.explainer import TFLiteExplainer
from edgecnn.training.export.exporter import ExportOptions, export
def dil(b,d=4): return (max(0,b[0]-d),max(0,b[1]-d),b[2]+d,b[3]+d)
res = {}
for seed in map(int, sys.argv[1:]):
    root = Path(tempfile.gettempdir()) / f"explain_bounds_{seed}"; shutil.rmtree(root, ignore_errors=True); root.mkdir()
    write_evidence_folder(root/"data", per_class=20, seed=seed)
    blank = root/"blank"
    for c in COLOURS: (blank/c).mkdir(parents=True); [cv2.imwrite(str(blank/c/f"{i}.png"), np.full((32,32,3),128,np.uint8)) for i in range(4)]
    m = train_evidence_model(root/"float.keras", seed=seed)
    export(root/"float.keras", ExportOptions(quantize="int8", calibration_data=root/"data", out=root/"int8.tflite", labels_file=None), progress=False)
    export(root/"float.keras", ExportOptions(quantize="int8", calibration_data=blank, out=root/"bad.tflite"), progress=False)
    imgs, labels, boxes = evidence_arrays(30, 1000+seed)
    maps, k, _ = grad_cam(m, (imgs.astype(np.float32)-127.5)/127.5)
    heat = [resize_map(normalize_map(mp),32,32) for mp in maps]
    out = {"gradcam": float(np.mean([mass_inside(h, dil(b)) for h,b in zip(heat,boxes)])), "acc": float((k==labels).mean())}
    for name in ("int8","bad"):
        e = TFLiteExplainer(root/f"{name}.tflite")
        ex = [e.explain(im, int(c)) for im,c in zip(imgs,k)]
        out[name+"_mass"] = float(np.mean([mass_inside(a.heatmap, dil(b)) for a,b in zip(ex,boxes)]))
        s = summarize(compare_maps(heat, [a.heatmap for a in ex], range(30), k), list(COLOURS))["overall"]
        out[name+"_rho"], out[name+"_iou"] = s["spearman_mean"], s["top20_iou_mean"]
        out[name+"_acc"] = float(np.mean([np.argmax(a.scores)==l for a,l in zip(ex,labels)]))
    print(seed, json.dumps({a: round(b,3) for a,b in out.items()}), flush=True)
