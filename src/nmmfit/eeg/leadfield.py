"""EEG lead fields, built offline with MNE-Python (no dataset download).

Default head model (:func:`sphere_leadfield`):

- 60 EEG channels: the BioSemi-64 10-10 labels minus Fpz, Iz, P9 and P10, placed at the
  ``standard_1005`` positions (``colin27_1005`` from MNE 1.13 on; MRI space aligned with
  fsaverage, shipped with MNE).
- A 3-shell-plus-scalp sphere (MNE defaults: relative radii 0.90/0.92/0.97/1.0, conductivities
  0.33/1.0/0.004/0.33 S/m) fitted to those positions by :func:`mne.make_sphere_model`.
- The JR column is one fixed-orientation dipole in the left caudal middle frontal gyrus:
  MNI305 (-37, 10, 47) mm, an approximate centre of the Desikan-Killiany
  ``caudalmiddlefrontal-lh`` label (the paper's source region), mapped to MNE head
  coordinates with MNE's own fsaverage head<->MRI transform (fsaverage surface RAS = MNI305).
  It lies about 62 mm from the sphere centre, inside the brain shell. Its orientation is
  radial (from the sphere centre), the direction of the pyramidal-cell columns at a gyral
  crown.
- Background sources for the noise covariance (:mod:`nmmfit.eeg.noise`): a 10 mm volume
  grid inside the brain sphere, restricted to a cortical shell (from 25 mm to 5 mm below the
  inner-skull sphere), free orientation.

Gains are in V per A*m, on unreferenced channels; the average reference is applied later
(:func:`average_reference`). Optionally, :func:`tvb_leadfield` reads The Virtual Brain's
real-head 65-channel projection matrix from the ``tvb-data`` package, summed per region.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SFREQ = 600.614990234375
#: The 60 channel names of the default montage.
CHANNELS_60: tuple[str, ...] = (
    "Fp1", "AF7", "AF3", "F1", "F3", "F5", "F7", "FT7", "FC5", "FC3", "FC1", "C1", "C3", "C5",
    "T7", "TP7", "CP5", "CP3", "CP1", "P1", "P3", "P5", "P7", "PO7", "PO3", "O1", "Oz", "POz",
    "Pz", "CPz", "Fp2", "AF8", "AF4", "AFz", "Fz", "F2", "F4", "F6", "F8", "FT8", "FC6", "FC4",
    "FC2", "FCz", "Cz", "C2", "C4", "C6", "T8", "TP8", "CP6", "CP4", "CP2", "P2", "P4", "P6",
    "P8", "PO8", "PO4", "O2",
)
#: Left caudal middle frontal gyrus, MNI305 (= fsaverage surface RAS), mm.
SOURCE_MNI_MM: tuple[float, float, float] = (-37.0, 10.0, 47.0)
#: TVB 76-region label nearest to the caudal middle frontal gyrus (frontal eye field).
TVB_REGION = "lFEF"


@dataclass(frozen=True)
class LeadField:
    """Gain of the JR source (and of background sources) on a set of EEG channels.

    gain : [n_ch] V/(A*m), the fixed-orientation source, unreferenced.
    gain_bg : [n_ch, n_bg] V/(A*m), background sources (columns), unreferenced.
    ch_names : channel names, length n_ch.
    meta : provenance (positions in head coordinates, sphere, versions).
    """

    gain: np.ndarray
    gain_bg: np.ndarray
    ch_names: tuple[str, ...]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ch_names)
        if self.gain.shape != (n,):
            raise ValueError(f"LeadField.gain has shape {self.gain.shape}, but there are {n} "
                             f"channel names; expected ({n},)")
        if self.gain_bg.ndim != 2 or self.gain_bg.shape[0] != n:
            raise ValueError(f"LeadField.gain_bg has shape {self.gain_bg.shape}; expected "
                             f"({n}, n_sources)")

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.ch_names)

    def info(self, sfreq: float = SFREQ):
        """An :class:`mne.Info` for these channels (with montage when known)."""
        import mne

        info = mne.create_info(list(self.ch_names), sfreq, "eeg")
        montage = self.meta.get("montage")
        if montage:
            with _quiet():
                info.set_montage(_montage(montage), on_missing="ignore")
        return info


def average_reference(gain: np.ndarray) -> np.ndarray:
    """Average-referenced copy of a gain vector/matrix (channels on axis 0)."""
    g = np.asarray(gain, dtype=float)
    return g - g.mean(axis=0, keepdims=True)


def check_channels(lf: LeadField, ch_names) -> np.ndarray:
    """Indices of ``ch_names`` in the lead field; ``ValueError`` naming the mismatch."""
    names = list(ch_names)
    missing = [c for c in names if c not in lf.ch_names]
    if missing:
        raise ValueError(f"montage/lead-field channel mismatch: {len(missing)} of the "
                         f"{len(names)} requested channels ({missing[:5]}...) are not among "
                         f"the lead field's {lf.n_channels} channels (gain shape "
                         f"{lf.gain.shape})")
    return np.array([lf.ch_names.index(c) for c in names])


def _quiet():
    import mne

    return mne.utils.use_log_level("ERROR")


#: MNE 1.13 renamed 'standard_1005' to 'colin27_1005' (same positions); use what exists.
_ALIASES = {"standard_1005": "colin27_1005", "standard_1020": "colin27_1020"}


def _montage_name(name: str) -> str:
    import mne

    alias = _ALIASES.get(name)
    return alias if alias and alias in mne.channels.get_builtin_montages() else name


@functools.lru_cache(maxsize=4)
def _montage(name: str):
    import mne

    return mne.channels.make_standard_montage(_montage_name(name))


def mni_to_head(mni_mm) -> np.ndarray:
    """MNI305 (fsaverage surface RAS) mm -> MNE head coordinates, m, via fsaverage-trans.fif."""
    import mne

    path = Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-trans.fif"
    head_to_mri = mne.read_trans(path)["trans"]
    return mne.transforms.apply_trans(np.linalg.inv(head_to_mri),
                                      np.asarray(mni_mm, dtype=float) / 1000.0)


def sphere_leadfield(ch_names=CHANNELS_60, montage: str = "standard_1005",
                     source_mni_mm=SOURCE_MNI_MM, bg_spacing_mm: float = 10.0,
                     bg_shell_mm: float = 25.0) -> LeadField:
    """The default offline head model (see the module docstring); cached per arguments."""
    return _sphere_leadfield(tuple(ch_names), montage, tuple(float(x) for x in source_mni_mm),
                             float(bg_spacing_mm), float(bg_shell_mm))


@functools.lru_cache(maxsize=4)
def _sphere_leadfield(ch_names, montage, source_mni_mm, bg_spacing_mm, bg_shell_mm):
    import mne

    mont = _montage(montage)
    missing = [c for c in ch_names if c not in mont.ch_names]
    if missing:
        raise ValueError(f"montage/lead-field channel mismatch: channels {missing[:5]} "
                         f"({len(missing)} of {len(ch_names)}) are not in montage '{montage}'")
    info = mne.create_info(list(ch_names), SFREQ, "eeg")
    with _quiet():
        info.set_montage(mont)
        sphere = mne.make_sphere_model("auto", "auto", info)
        r0 = np.asarray(sphere["r0"], dtype=float)
        r_brain = float(sphere.radius) * float(sphere["layers"][0]["rel_rad"])
        pos = mni_to_head(source_mni_mm)
        ori = (pos - r0) / np.linalg.norm(pos - r0)
        if np.linalg.norm(pos - r0) >= r_brain:
            raise ValueError(f"source at head position {pos} m lies outside the brain sphere "
                             f"(radius {r_brain:.4f} m around {r0})")
        src = mne.setup_volume_source_space(pos=dict(rr=pos[None], nn=ori[None]),
                                            sphere=sphere)
        fwd = mne.make_forward_solution(info, trans=None, src=src, bem=sphere, meg=False,
                                        eeg=True)
        fwd = mne.convert_forward_solution(fwd, force_fixed=True, surf_ori=True)
        gain = np.asarray(fwd["sol"]["data"][:, 0], dtype=float)
        vol = mne.setup_volume_source_space(sphere=sphere, pos=bg_spacing_mm,
                                            exclude=max(0.0, r_brain * 1e3 - bg_shell_mm),
                                            mindist=5.0)
        fwd_bg = mne.make_forward_solution(info, trans=None, src=vol, bem=sphere, meg=False,
                                           eeg=True)
        gain_bg = np.asarray(fwd_bg["sol"]["data"], dtype=float)
    order = [fwd["info"]["ch_names"].index(c) for c in ch_names]
    meta = {
        "kind": "mne_sphere", "montage": _montage_name(montage), "mne": mne.__version__,
        "source_mni_mm": list(source_mni_mm), "source_head_m": pos.tolist(),
        "source_ori_head": ori.tolist(), "sphere_r0_m": r0.tolist(),
        "sphere_radius_m": float(sphere.radius), "brain_radius_m": r_brain,
        "n_bg_sources": int(gain_bg.shape[1] // 3), "bg_spacing_mm": bg_spacing_mm,
        "bg_shell_mm": bg_shell_mm, "gain_unit": "V/(A*m)",
    }
    return LeadField(gain=gain[order], gain_bg=gain_bg[order], ch_names=tuple(ch_names),
                     meta=meta)


def tvb_leadfield(region: str = TVB_REGION) -> LeadField:
    """Real-head lead field from the optional ``tvb-data`` package (not a dependency).

    TVB's ``projection_eeg_65_surface_16k.npy`` (65 sensors x 16384 cortical vertices) is
    summed over the vertices of each of the 76 regions (as TVB's EEG monitor does); the two
    all-NaN rows (IO1, IO2) are dropped, leaving 63 channels. ``region`` selects the JR source
    column; all 76 region columns serve as background sources. Units are those of the
    Brainstorm-derived matrix (undocumented; treated as V/(A*m) up to a scale that the noise
    calibration absorbs).
    """
    try:
        import tvb_data
    except ImportError as err:
        raise ImportError("tvb_leadfield needs the optional 'tvb-data' package "
                          "(pip install tvb-data); it is not an nmmfit dependency") from err
    import zipfile

    root = Path(tvb_data.__file__).parent
    proj = np.load(root / "projectionMatrix" / "projection_eeg_65_surface_16k.npy")
    rmap = np.loadtxt(root / "regionMapping" / "regionMapping_16k_76.txt", dtype=int)
    sensors = np.genfromtxt(root / "sensors" / "eeg_brainstorm_65.txt", dtype=str, usecols=0)
    with zipfile.ZipFile(root / "connectivity" / "connectivity_76.zip") as zf:
        cname = next(n for n in zf.namelist() if n.endswith("centres.txt"))
        labels = [ln.split()[0] for ln in zf.read(cname).decode().splitlines() if ln.strip()]
    if proj.shape != (sensors.shape[0], rmap.shape[0]):
        raise ValueError(f"tvb-data projection has shape {proj.shape}, but there are "
                         f"{sensors.shape[0]} sensors and {rmap.shape[0]} mapped vertices")
    if region not in labels:
        raise ValueError(f"region '{region}' is not one of the {len(labels)} TVB regions "
                         f"({labels[:6]}...)")
    good = np.isfinite(proj).all(axis=1)
    per_region = np.zeros((proj.shape[0], len(labels)))
    np.add.at(per_region.T, rmap, np.nan_to_num(proj).T)
    per_region = per_region[good]
    from importlib.metadata import PackageNotFoundError, version

    try:
        tvb_data_version = version("tvb-data")
    except PackageNotFoundError:
        tvb_data_version = None
    meta = {"kind": "tvb_data", "tvb_data": tvb_data_version,
            "region": region, "dropped_rows": np.flatnonzero(~good).tolist(),
            "gain_unit": "tvb projection units"}
    return LeadField(gain=per_region[:, labels.index(region)].copy(), gain_bg=per_region,
                     ch_names=tuple(str(s) for s in sensors[good]), meta=meta)
