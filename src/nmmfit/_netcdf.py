"""Reading the package's NetCDF files (xarray + h5netcdf) with errors that name the file."""

from __future__ import annotations

from pathlib import Path


def read_netcdf(path, what: str):
    """The whole ``xarray.Dataset`` in the NetCDF4 file ``path``, loaded into memory (the file
    is closed again). ``what`` names the expected content in the errors:
    FileNotFoundError when there is no such file, ValueError when it is not readable NetCDF."""
    import xarray as xr  # heavy: only the file functions need it

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file {path}")
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return ds.load()
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable NetCDF file ({type(e).__name__}: {e}); "
                         f"expected a {what} file") from None


#: NetCDF encoding of a kept FCD matrix: gzip with byte shuffling stores the 373 x 373
#: float32 matrix of a 1200-frame DELSSOME run (0.56 MB) in about 0.43 MB.
FCD_ENCODING = {"zlib": True, "complevel": 4, "shuffle": True}


def put_fcd_matrix(data: dict, coords: dict, name: str, fcd) -> None:
    """Add an :class:`~nmmfit.stats.fcd.FCDMatrix` (or nothing, for None) to the variables
    ``data`` and coordinates ``coords`` of a Dataset being built: variable ``name``
    [W', W'] float32 on dimensions ``<name>_time`` and ``<name>_time_b`` (window centres,
    seconds), with the stride and label as attributes; compressed by :data:`FCD_ENCODING`
    (a variable's ``encoding`` entry, applied by ``to_netcdf``)."""
    if fcd is None:
        return
    t = f"{name}_time"
    tattrs = {"units": "s", "long_name": "FCD window centre from the run's first frame"}
    coords[t] = ((t,), fcd.time_s, tattrs)
    coords[f"{t}_b"] = ((f"{t}_b",), fcd.time_s, tattrs)
    data[name] = ((t, f"{t}_b"), fcd.values,
                  {"long_name": "FC correlation between windows (FCD matrix) of one run",
                   "stride": int(fcd.stride), "label": fcd.label})


def encode_fcd_matrix(ds, name: str) -> None:
    """Set :data:`FCD_ENCODING` on variable ``name`` of ``ds`` when it has one."""
    if name in ds.data_vars:
        ds[name].encoding.update(FCD_ENCODING)


def get_fcd_matrix(ds, name: str):
    """The :class:`~nmmfit.stats.fcd.FCDMatrix` written by :func:`put_fcd_matrix`, or None
    when ``ds`` has no variable ``name`` (a file written before it was kept)."""
    if name not in ds.data_vars:
        return None
    from nmmfit.stats.fcd import FCDMatrix  # numba-backed module: only when a file has one

    var = ds[name]
    return FCDMatrix(values=var.values, time_s=ds[f"{name}_time"].values,
                     stride=int(var.attrs.get("stride", 1)), label=str(var.attrs.get("label", "")))
