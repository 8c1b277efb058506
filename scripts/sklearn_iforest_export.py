#!/usr/bin/python3
"""Export a fitted scikit-learn IsolationForest for `linewatch iforest import-sklearn`.

Run with Debian's python3-sklearn (/usr/bin/python3). Either fits a forest on a CSV (header row,
numeric feature columns) or loads one saved with joblib, then writes one JSON file:

  {
    "format": "sklearn-iforest-export", "version": 1,
    "sklearn_version": "1.2.1", "numpy_version": "1.24.2",
    "params": {...},                      # get_params() of the forest (JSON-able values)
    "n_features_in": 9,
    "feature_names": ["x0", ...],         # feature_names_in_, else the CSV columns, else x0..
    "max_samples_": 256,
    "offset_": -0.5,
    "estimators": [                       # one per tree, in estimators_ order
      {"features": [...],                 # estimators_features_[i]: local feature -> global column
       "feature": [...], "threshold": [...], "children_left": [...], "children_right": [...],
       "n_node_samples": [...]}           # tree_ arrays as they are (leaves: children -1, feature -2)
    ],
    "score_samples": [...],               # with --scores: score_samples of the CSV rows
    "timing": {...}                       # with --time-rows: seconds spent in score_samples
  }

Floats are written with Python's repr, which round-trips doubles exactly; thresholds keep every
bit. The forest scores in float32 (scikit-learn casts X to float32 before walking the trees);
linewatch's import records that ("compare": "f32").

Examples:
  sklearn_iforest_export.py --csv data.csv --exclude label --trees 100 --max-samples 256 \
      --seed 1 --scores --out export.json
  sklearn_iforest_export.py --model forest.joblib --csv data.csv --scores --out export.json
  sklearn_iforest_export.py --csv fit.csv --time-rows rows.f64 --time-columns 8 --time-n-jobs 1,2 --out t.json
"""
import argparse
import csv
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest


def read_csv(path, features, exclude):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        if features:
            missing = [c for c in features if c not in header]
            if missing:
                sys.exit(f"{path}: no column(s) {', '.join(missing)} (the file has {', '.join(header)})")
            names = [c for c in features if c not in exclude]
        else:
            names = [c for c in header if c not in exclude]
        index = [header.index(c) for c in names]
        rows = []
        for line_no, cells in enumerate(reader, start=2):
            if not cells or all(c.strip() == "" for c in cells):
                continue
            try:
                rows.append([float(cells[i]) for i in index])
            except (ValueError, IndexError) as e:
                sys.exit(f"{path}:{line_no}: {e}")
    X = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    if not np.all(np.isfinite(X)):
        sys.exit(f"{path}: a feature value is not finite")
    return X, names


def max_samples_arg(text):
    if text == "auto":
        return "auto"
    return float(text) if "." in text else int(text)


def jsonable(v):
    return v if isinstance(v, (str, int, float, bool)) or v is None else repr(v)


def export_forest(model, names):
    estimators = []
    for tree, features in zip(model.estimators_, model.estimators_features_):
        t = tree.tree_
        estimators.append({
            "features": [int(f) for f in features],
            "feature": t.feature.tolist(),
            "threshold": t.threshold.tolist(),
            "children_left": t.children_left.tolist(),
            "children_right": t.children_right.tolist(),
            "n_node_samples": t.n_node_samples.tolist(),
        })
    if hasattr(model, "feature_names_in_"):
        names = [str(n) for n in model.feature_names_in_]
    if names is None or len(names) != model.n_features_in_:
        names = [f"x{k}" for k in range(model.n_features_in_)]
    return {
        "format": "sklearn-iforest-export",
        "version": 1,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "params": {k: jsonable(v) for k, v in model.get_params().items()},
        "n_features_in": int(model.n_features_in_),
        "feature_names": names,
        "max_samples_": int(model.max_samples_),
        "offset_": float(model.offset_),
        "estimators": estimators,
    }


def time_scores(model, path, columns, n_jobs_list, repeats):
    X = np.fromfile(path, dtype="<f8")
    if X.size % columns != 0:
        sys.exit(f"{path}: {X.size} values are not rows of {columns}")
    X = X.reshape(-1, columns)
    runs = []
    for n_jobs in n_jobs_list:
        model.set_params(n_jobs=n_jobs)
        seconds = []
        checksum = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            s = model.score_samples(X)
            seconds.append(time.perf_counter() - t0)
            checksum = float(np.sum(-s))
        runs.append({"n_jobs": n_jobs, "seconds": seconds, "checksum": checksum})
    return {"rows": int(X.shape[0]), "columns": columns, "runs": runs,
            "note": "time measured around score_samples only (input already in memory as float64)"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", help="CSV with a header: fit on it (unless --model) and score it (--scores)")
    p.add_argument("--features", help="feature columns, comma separated (default: all but --exclude)")
    p.add_argument("--exclude", default="", help="columns to leave out, comma separated (e.g. label)")
    p.add_argument("--model", help="a fitted IsolationForest saved with joblib.dump, instead of fitting")
    p.add_argument("--save-model", help="joblib.dump the fitted forest here")
    p.add_argument("--trees", type=int, default=100, help="n_estimators (default 100)")
    p.add_argument("--max-samples", type=max_samples_arg, default=256, help="int, float fraction or auto (default 256)")
    p.add_argument("--max-features", type=float, default=1.0, help="max_features (default 1.0)")
    p.add_argument("--bootstrap", action="store_true", help="draw rows with replacement")
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--scores", action="store_true", help="add score_samples of the --csv rows")
    p.add_argument("--time-rows", help="raw little-endian float64 rows to time score_samples on")
    p.add_argument("--time-columns", type=int, help="values per row of --time-rows")
    p.add_argument("--time-n-jobs", default="1", help="n_jobs values to time, comma separated (default 1)")
    p.add_argument("--time-repeats", type=int, default=1, help="timed runs per n_jobs (default 1)")
    p.add_argument("--out", required=True, help="the export JSON file")
    a = p.parse_args()

    features = [c.strip() for c in a.features.split(",")] if a.features else None
    exclude = {c.strip() for c in a.exclude.split(",") if c.strip()}
    X, names = (read_csv(a.csv, features, exclude) if a.csv else (None, None))
    if a.model:
        import joblib
        model = joblib.load(a.model)
        if not isinstance(model, IsolationForest):
            sys.exit(f"{a.model}: holds a {type(model).__name__}, not an IsolationForest")
    else:
        if X is None:
            sys.exit("give --csv to fit on, or --model")
        model = IsolationForest(n_estimators=a.trees, max_samples=a.max_samples, max_features=a.max_features,
                                bootstrap=a.bootstrap, random_state=a.seed).fit(X)
    if a.save_model:
        import joblib
        joblib.dump(model, a.save_model)

    export = export_forest(model, names)
    if a.scores:
        if X is None:
            sys.exit("--scores needs --csv")
        export["score_samples"] = model.score_samples(X).tolist()
    if a.time_rows:
        if not a.time_columns:
            sys.exit("--time-rows needs --time-columns")
        export["timing"] = time_scores(model, a.time_rows, a.time_columns,
                                       [int(j) for j in a.time_n_jobs.split(",")], a.time_repeats)
    with open(a.out, "w") as f:
        json.dump(export, f)


if __name__ == "__main__":
    main()
