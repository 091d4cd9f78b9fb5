"""Kestra's serdes plugin (`io.kestra.plugin.serdes.*`): files converted to and from Kestra's ION rows.

Importing this package registers every type and imports no file library: pyarrow, openpyxl and fastavro are
imported by the tasks that need them, when they run.
"""

from kestractl.plugins.serdes import avro, csv_ion, excel, json_ion, parquet

__all__ = ["avro", "csv_ion", "excel", "json_ion", "parquet"]
