"""The serdes plugin through real flows: files in as FILE inputs, converted by the tasks, read back from internal
storage; ION checked as text (Kestra's exact form) and as values."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kestractl import ion
from tests.conftest import Cli, runs, state

PREFIX = "io.kestra.plugin.serdes."


class Flows:
    """Deploys one flow of tasks that read the FILE input `file`, runs it, and reads what its tasks wrote."""

    def __init__(self, cli: Cli, tmp_path: Path) -> None:
        self.cli, self.tmp = cli, tmp_path

    def run(self, tasks: str, data: bytes, suffix: str = ".txt") -> dict[str, Any]:
        flow = self.tmp / "flow.yaml"
        flow.write_text("id: serdes\nnamespace: dev\ninputs:\n  - id: file\n    type: FILE\ntasks:\n" + tasks)
        result = self.cli("flow", "deploy", str(flow))
        assert result.exit_code == 0, result.stderr
        source = self.tmp / f"input{suffix}"
        source.write_bytes(data)
        return self.cli.execute("dev", "serdes", "--input", f"file={source}")[1]

    def outputs(self, execution: dict[str, Any], task_id: str) -> dict[str, Any]:
        return runs(execution, task_id)[0]["outputs"]  # type: ignore[no-any-return]

    def file(self, uri: str) -> bytes:
        return (self.cli.home / "storage" / uri.removeprefix("kestra:///")).read_bytes()

    def output(self, execution: dict[str, Any], task_id: str) -> bytes:
        return self.file(self.outputs(execution, task_id)["uri"])

    def logs(self, execution: dict[str, Any]) -> str:
        return str(self.cli("executions", "logs", execution["id"]).stdout)


@pytest.fixture
def flows(cli: Cli, tmp_path: Path) -> Flows:
    return Flows(cli, tmp_path)


def task(task_id: str, kind: str, source: str = "{{ inputs.file }}", **props: str) -> str:
    lines = [f"  - id: {task_id}", f"    type: {PREFIX}{kind}", f'    from: "{source}"']
    return "\n".join(lines + [f"    {key}: {value}" for key, value in props.items()]) + "\n"


def to(task_id: str) -> str:
    return "{{ outputs." + task_id + ".uri }}"


# ------------------------------------------------------------------------------------------------------ CSV


def test_csv_round_trip_keeps_quotes_separators_nulls_and_the_charset(flows: Flows) -> None:
    data = 'id;name;note\n1;"Zoë; ""the"" first";\\N\n2;"two\nlines";\n'.encode("latin-1")
    tasks = task("read", "csv.CsvToIon", fieldSeparator='";"', charset="ISO-8859-1") + task(
        "write", "csv.IonToCsv", to("read"), fieldSeparator='"|"', charset="ISO-8859-1"
    )
    execution = flows.run(tasks, data, ".csv")
    assert state(execution) == "SUCCESS"
    assert flows.output(execution, "read").decode() == (
        '{id:"1",name:"Zoë; \\"the\\" first",note:null}\n{id:"2",name:"two\\nlines",note:""}\n'
    )
    assert flows.outputs(execution, "read")["size"] == 2
    written = flows.output(execution, "write").decode("latin-1")
    assert written == 'id|name|note\n1|"Zoë; ""the"" first"|\n2|"two\nlines"|\n'
    assert flows.outputs(execution, "write")["uri"].endswith(".csv")


def test_csv_reader_strips_a_bom_and_reads_rows_as_lists_without_a_header(flows: Flows) -> None:
    execution = flows.run(task("read", "csv.CsvToIon", header="false", skipRows="1"), b"\xef\xbb\xbfa,b\n1,2\n3,\\N\n")
    assert ion.loads_lines(flows.output(execution, "read").decode()) == [["1", "2"], ["3", None]]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("DROP", [{"a": "1", "b": "2"}]), ("RENAME", [{"a": "1", "b": "2", "col_2": "3"}])],
)
def test_unnamed_header_columns_are_dropped_or_renamed(flows: Flows, mode: str, expected: list[Any]) -> None:
    execution = flows.run(task("read", "csv.CsvToIon", onEmptyHeader=mode), b"a,b,\n1,2,3\n")
    assert ion.loads_lines(flows.output(execution, "read").decode()) == expected


def test_a_bad_csv_line_fails_the_task_with_one_line(flows: Flows) -> None:
    execution = flows.run(task("read", "csv.CsvToIon"), b"a,b\n1,2\n1,2,3\n")
    assert state(execution) == "FAILED"
    logs = flows.logs(execution)
    assert "Bad line encountered (field count mismatch): Expected 2, got 3 fields." in logs
    assert "Traceback" not in logs


def test_a_bad_csv_line_is_skipped_with_a_warning_when_asked(flows: Flows) -> None:
    execution = flows.run(task("read", "csv.CsvToIon", onBadLines="WARN"), b'a,b\n1,2\n"x"y,2\n3,4,5\n6,7\n')
    assert state(execution) == "SUCCESS"
    assert ion.loads_lines(flows.output(execution, "read").decode()) == [{"a": "1", "b": "2"}, {"a": "6", "b": "7"}]
    assert flows.logs(execution).count("Bad line encountered") == 2


def test_a_missing_file_fails_with_one_line_naming_it(flows: Flows) -> None:
    execution = flows.run(task("read", "csv.CsvToIon", "kestra:///dev/nothing.csv"), b"")
    assert state(execution) == "FAILED"
    assert "from: file not found in internal storage: kestra:///dev/nothing.csv" in flows.logs(execution)


ROWS = (
    "{id:1,price:12.50,ratio:1.5e0,big:1.0e7,ok:true,none:null,day:2024-01-15,"
    'at:2024-01-15T10:00:00.000Z,local:LocalDateTime::"2024-01-15T10:00:00",clock:LocalTime::"08:30:00",'
    "tags:[a,b],nested:{k:1}}\n"
)


def test_ion_to_csv_writes_values_as_kestra_prints_them(flows: Flows) -> None:
    execution = flows.run(task("write", "csv.IonToCsv"), ROWS.encode(), ".ion")
    header, row = flows.output(execution, "write").decode().splitlines()
    assert header == "id,price,ratio,big,ok,none,day,at,local,clock,tags,nested"
    assert row == (
        '1,12.50,1.5,1.0E7,true,,2024-01-15,2024-01-15T10:00:00.000Z,2024-01-15T10:00:00.000Z,08:30:00,"[a, b]",{k=1}'
    )


@pytest.mark.parametrize(
    ("mode", "line"),
    [("ALWAYS", '"1","x y",""'), ("REQUIRED", "1,x y,"), ("NON_NUMERIC", '1,"x y",')],
)
def test_quote_modes(flows: Flows, mode: str, line: str) -> None:
    execution = flows.run(task("write", "csv.IonToCsv", quoteMode=mode, header="false"), b'{a:1,b:"x y",c:null}\n')
    assert flows.output(execution, "write").decode() == line + "\n"


# ----------------------------------------------------------------------------------------------------- JSON


def test_json_lines_round_trip_keeps_types_and_nesting(flows: Flows) -> None:
    data = b'{"a":1,"b":"\xc3\xa9","c":null,"d":{"x":[1.5,true]}}\n\n{"a":2}\n'
    tasks = task("read", "json.JsonToIon") + task("write", "json.IonToJson", to("read"))
    execution = flows.run(tasks, data, ".jsonl")
    assert flows.output(execution, "read").decode() == '{a:1,b:"é",c:null,d:{x:[1.5e0,true]}}\n{a:2}\n'
    assert flows.output(execution, "write") == b'{"a":1,"b":"\xc3\xa9","c":null,"d":{"x":[1.5,true]}}\n{"a":2}\n'
    assert flows.outputs(execution, "write")["uri"].endswith(".jsonl")


@pytest.mark.parametrize(("data", "written"), [(b'[{"a":1},{"a":2}]', b'[{"a":1},{"a":2}]'), (b'{"a":1}', b'{"a":1}')])
def test_a_json_document_is_one_row_per_element(flows: Flows, data: bytes, written: bytes) -> None:
    tasks = task("read", "json.JsonToIon", newLine="false") + task("write", "json.IonToJson", to("read"),
                                                                   newLine="false")  # fmt: skip
    execution = flows.run(tasks, data, ".json")
    assert flows.output(execution, "write") == written
    assert flows.outputs(execution, "write")["uri"].endswith(".json")


def test_ion_to_json_writes_dates_and_decimals_as_jackson_does(flows: Flows) -> None:
    execution = flows.run(task("write", "json.IonToJson"), ROWS.encode(), ".ion")
    assert flows.output(execution, "write").decode() == (
        '{"id":1,"price":12.5,"ratio":1.5,"big":1.0E7,"ok":true,"none":null,"day":"2024-01-15",'
        '"at":"2024-01-15T10:00:00Z","local":"2024-01-15T10:00:00","clock":"08:30:00","tags":["a","b"],'
        '"nested":{"k":1}}\n'
    ).replace("1.0E7", "10000000.0")  # Python's shortest float text, where Jackson writes Double.toString


def test_invalid_json_fails_with_one_line(flows: Flows) -> None:
    execution = flows.run(task("read", "json.JsonToIon"), b'{"a":1}\n{"a":\n', ".jsonl")
    assert state(execution) == "FAILED"
    assert "line 2: invalid JSON" in flows.logs(execution)


# --------------------------------------------------------------------------------- Excel, Parquet and Avro

TYPED = (
    '{id:1,name:"Ann",price:12.50,day:2024-01-15,at:2024-01-15T10:00:00.000Z,note:null,active:true}\n'
    '{id:2,name:"Bob",price:3.00,day:null,at:2024-02-01T07:30:00.000Z,note:"x",active:false}\n'
)
SCHEMA = (
    '{"type": "record", "name": "Order", "fields": ['
    '{"name": "id", "type": "long"}, {"name": "name", "type": "string"},'
    '{"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},'
    '{"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},'
    '{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},'
    '{"name": "note", "type": ["null", "string"]}, {"name": "active", "type": "boolean"}]}'
)
TYPED_ROWS = [
    {"id": 1, "name": "Ann", "price": Decimal("12.50"), "day": date(2024, 1, 15),
     "at": datetime(2024, 1, 15, 10, tzinfo=UTC), "note": None, "active": True},
    {"id": 2, "name": "Bob", "price": Decimal("3.00"), "day": None,
     "at": datetime(2024, 2, 1, 7, 30, tzinfo=UTC), "note": "x", "active": False},
]  # fmt: skip


@pytest.mark.parametrize(("writer", "reader"), [("avro.IonToAvro", "avro.AvroToIon"),
                                                ("parquet.IonToParquet", "parquet.ParquetToIon")])  # fmt: skip
def test_avro_and_parquet_round_trips_keep_kestras_types(flows: Flows, writer: str, reader: str) -> None:
    tasks = task("write", writer, schema=f"'{SCHEMA}'") + task("read", reader, to("write"))
    execution = flows.run(tasks, TYPED.encode(), ".ion")
    assert state(execution) == "SUCCESS", flows.logs(execution)
    assert flows.output(execution, "read").decode() == TYPED
    assert ion.loads_lines(TYPED) == TYPED_ROWS


def test_csv_text_is_typed_by_the_avro_schema(flows: Flows) -> None:
    data = b"id,name,price,day,at,note,active\n1,Ann,12.5,2024-01-15,2024-01-15T10:00:00Z,,yes\n"
    tasks = task("csv", "csv.CsvToIon") + task("write", "avro.IonToAvro", to("csv"), schema=f"'{SCHEMA}'")
    execution = flows.run(tasks + task("read", "avro.AvroToIon", to("write")), data, ".csv")
    assert ion.loads_lines(flows.output(execution, "read").decode()) == [TYPED_ROWS[0]]


def test_a_value_that_does_not_fit_the_schema_is_a_bad_line(flows: Flows) -> None:
    bad = TYPED.replace("id:2", 'id:"two"')
    execution = flows.run(task("write", "avro.IonToAvro", schema=f"'{SCHEMA}'"), bad.encode(), ".ion")
    assert state(execution) == "FAILED"
    assert "id: `two` is not a valid long" in flows.logs(execution)
    execution = flows.run(task("write", "avro.IonToAvro", schema=f"'{SCHEMA}'", onBadLines="SKIP"), bad.encode())
    assert (state(execution), flows.outputs(execution, "write")["size"]) == ("SUCCESS", 2)


def test_parquet_schema_is_inferred_without_one(flows: Flows) -> None:
    tasks = task("write", "parquet.IonToParquet", compressionCodec="ZSTD") + task(
        "read", "parquet.ParquetToIon", to("write")
    )
    execution = flows.run(tasks, TYPED.encode(), ".ion")
    assert ion.loads_lines(flows.output(execution, "read").decode()) == TYPED_ROWS


def test_excel_round_trip_with_two_sheets(flows: Flows) -> None:
    tasks = task("write", "excel.IonToExcel", "{{ inputs.file }}", sheetsTitle="Orders") + task(
        "read", "excel.ExcelToIon", to("write")
    )
    execution = flows.run(tasks, TYPED.encode(), ".ion")
    assert state(execution) == "SUCCESS", flows.logs(execution)
    uris = flows.outputs(execution, "read")["uris"]
    assert list(uris) == ["Orders"]
    rows = ion.loads_lines(flows.file(uris["Orders"]).decode())
    assert rows[0] == {"id": 1.0, "name": "Ann", "price": 12.5, "day": "2024-01-15", "at": "2024-01-15",
                       "note": None, "active": True}  # fmt: skip
    assert rows[1]["day"] is None and rows[1]["note"] == "x"


def test_excel_from_a_map_writes_one_sheet_per_file(flows: Flows) -> None:
    tasks = (
        task("csv", "csv.CsvToIon")
        + "  - id: write\n    type: io.kestra.plugin.serdes.excel.IonToExcel\n    from:\n"
        + '      First: "{{ outputs.csv.uri }}"\n      Second: "{{ outputs.csv.uri }}"\n'
        + task("read", "excel.ExcelToIon", to("write"), sheetsTitle="[Second]")
    )
    execution = flows.run(tasks, b"a,b\nx,y\n", ".csv")
    assert flows.outputs(execution, "write")["size"] == 2
    uris = flows.outputs(execution, "read")["uris"]
    assert ion.loads_lines(flows.file(uris["Second"]).decode()) == [{"a": "x", "b": "y"}]


# ------------------------------------------------------------------------------------------ the plugin itself


def test_importing_the_plugin_imports_no_file_library() -> None:
    code = (
        "import sys, kestractl.plugins.serdes; "
        "print([m for m in ('pyarrow', 'openpyxl', 'fastavro') if m in sys.modules])"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_old_type_names_resolve_and_the_doc_comes_from_the_declaration(cli: Cli) -> None:
    result = cli("plugins", "doc", "io.kestra.plugin.serdes.csv.CsvReader")
    assert result.exit_code == 0, result.stderr
    assert "fieldSeparator" in result.stdout and "onBadLines" in result.stdout


def test_null_and_boolean_text_follow_kestras_lists_and_the_unions_order(flows: Flows) -> None:
    schema = (
        '{"type": "record", "name": "R", "fields": [{"name": "a", "type": ["null", "string"]},'
        '{"name": "b", "type": ["string", "null"]}, {"name": "c", "type": "boolean"},'
        '{"name": "d", "type": ["null", "double"]}]}'
    )
    tasks = task("csv", "csv.CsvToIon") + task("write", "avro.IonToAvro", to("csv"), schema=f"'{schema}'")
    execution = flows.run(tasks + task("read", "avro.AvroToIon", to("write")), b"a,b,c,d\n,,YES,N/A\n", ".csv")
    assert ion.loads_lines(flows.output(execution, "read").decode()) == [{"a": None, "b": "", "c": True, "d": None}]


def test_a_missing_library_or_charset_fails_with_one_line_saying_what_to_do(
    flows: Flows, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fastavro", None)  # what `import fastavro` meets when it is not installed
    execution = flows.run(task("write", "avro.IonToAvro"), b"{a:1}\n", ".ion")
    assert "this task needs `fastavro`: pip install 'kestractl[serdes]'" in flows.logs(execution)
    execution = flows.run(task("read", "csv.CsvToIon", charset="KLINGON-8"), b"a\n1\n")
    assert (state(execution), flows.logs(execution).strip().split(" ", 3)[-1]) == (
        "FAILED",
        "charset: unknown charset `KLINGON-8`",
    )


def test_skip_rows_skips_rows_after_the_header_before_they_are_checked(flows: Flows) -> None:
    execution = flows.run(task("read", "csv.CsvToIon", skipRows="1"), b"a,b\n1,2,3\n4,5\n")
    assert ion.loads_lines(flows.output(execution, "read").decode()) == [{"a": "4", "b": "5"}]


def test_nested_parquet_columns_become_nested_maps_and_lists(flows: Flows, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "attrs": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
            "point": pa.array([{"x": 1.5, "y": None}, None], pa.struct([("x", pa.float64()), ("y", pa.float64())])),
        }
    )
    pq.write_table(table, tmp_path / "nested.parquet")
    execution = flows.run(task("read", "parquet.ParquetToIon"), (tmp_path / "nested.parquet").read_bytes())
    assert flows.output(execution, "read").decode() == (
        '{id:1,tags:["a","b"],attrs:{k:1},point:{x:1.5e0,y:null}}\n{id:2,tags:[],attrs:null,point:null}\n'
    )


def test_nested_avro_types_round_trip_through_parquet_and_avro(flows: Flows) -> None:
    schema = (
        '{"type": "record", "name": "R", "fields": [{"name": "tags", "type": {"type": "array", "items": "string"}},'
        '{"name": "attrs", "type": {"type": "map", "values": "long"}},'
        '{"name": "point", "type": ["null", {"type": "record", "name": "P",'
        '"fields": [{"name": "x", "type": "double"}]}]}]}'
    )
    rows = '{tags:["a","b"],attrs:{k:1},point:{x:1.5e0}}\n{tags:[],attrs:{},point:null}\n'
    for writer, reader in (("parquet.IonToParquet", "parquet.ParquetToIon"), ("avro.IonToAvro", "avro.AvroToIon")):
        tasks = task("write", writer, schema=f"'{schema}'") + task("read", reader, to("write"))
        execution = flows.run(tasks, rows.encode(), ".ion")
        assert flows.output(execution, "read").decode() == rows, writer
