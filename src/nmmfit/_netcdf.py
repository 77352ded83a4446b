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
