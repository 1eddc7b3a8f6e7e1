"""migrc-sweep: when does migrc pay off? Sweeps of the `sim` model on Ray, stored as Parquet."""

__version__ = "0.1.0"
