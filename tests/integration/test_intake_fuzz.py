"""Property test: whatever arrives in a batch, intake decides every file and loses nothing.

Arbitrary bytes, arbitrary JSON and XML (lone surrogates, NULs, deep nesting), plans with
one field replaced by junk, and odd file names (bytes that are not UTF-8, spaces, digits
like a CPR number) are taken in through the intake service on a real store (SQLite and
PostgreSQL). The budget is bounded so it runs in ``make test``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from genop.inbox import batch_files, close_batch, stage_copy
from genop.store.models import Case, QuarantinedFile
from tests.factories import plan_dict

AS_OF = date(2026, 11, 3)
OUTCOMES = {"created", "revised", "unchanged", "quarantined"}

_text = st.text(st.characters(codec=None, blacklist_categories=()), max_size=30) | st.sampled_from(
    ["\ud800Karen Jensen", "Karen\x00Jensen", "\udcff", "010145-1234", "", " " * 3, "\ufeff"])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_fields = st.sampled_from(["plan_id", "discharge_date", "level", "citizen", "citizen__cpr", "citizen__name",
                           "diagnoses", "diagnosis_group", "start_by", "urgent", "hospital__name",
                           "function_before", "municipality_code"])


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode("ascii")


@st.composite
def _plan_with_junk(draw) -> bytes:  # noqa: ANN001 - hypothesis draw
    """A valid plan with one field replaced, so the parsers and the store, not just the JSON
    reader, meet the junk; plan_ids repeat across files to exercise revisions."""
    changes = {draw(_fields): draw(_json_values)}
    changes.setdefault("plan_id", draw(st.sampled_from(["GOP-FUZZ-1", "GOP-FUZZ-2", "GOP-FUZZ-3"])))
    if changes["plan_id"] is None:
        del changes["plan_id"]
    return _dump(plan_dict(**changes))


@st.composite
def _xml(draw) -> bytes:  # noqa: ANN001 - hypothesis draw
    tag = draw(st.sampled_from(["Genoptraeningsplan", "plan", "x"]))
    body = draw(st.text(max_size=60)).encode("utf-8", "surrogatepass")
    prolog = draw(st.sampled_from([b"", b'<?xml version="1.0" encoding="UTF-8"?>', b"\xef\xbb\xbf",
                                   b'<!DOCTYPE x [<!ENTITY a "aaaa">]>']))
    return prolog + f"<{tag}>".encode() + body + f"</{tag}>".encode()[: draw(st.integers(0, 40))]


_ODD_TEXT = ["\ud800Karen Jensen", "Karen\x00Jensen", "\udcff", "010145-1234", "", "\ufeff", "\u202e"]


@st.composite
def _plan_with_odd_text(draw) -> bytes:  # noqa: ANN001 - hypothesis draw
    """A plan that passes the contract checks but carries text a store may refuse (lone
    surrogates, NUL) in a free-text field: only recording meets it."""
    field = draw(st.sampled_from(["hospital__name", "hospital__department", "function_before", "rehab_need",
                                  "citizen__address__street", "note", "hospital__note", "citizen__note"]))
    return _dump(plan_dict(plan_id=f"GOP-ODD-{draw(st.integers(1, 4))}", **{field: draw(st.sampled_from(_ODD_TEXT))}))


_contents = st.one_of(st.binary(max_size=200), _json_values.map(_dump), _plan_with_junk(), _xml(),
                      _plan_with_odd_text(), st.just(_dump(plan_dict())))
_names = st.one_of(
    st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")),
    st.sampled_from([b"plan_120356_1118_Zorbanella Quexwick.json", b"010145.1234", b"010145 1234.json",
                     b"plan.XML", b"\xff\xfe.json", b"-", b" "]),
).filter(lambda b: not b.startswith(b".")).map(os.fsdecode)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(files=st.dictionaries(_names, _contents, min_size=1, max_size=6), crash_and_retry=st.booleans())
def test_every_file_is_decided_once_and_nothing_escapes(runtime, tmp_path, files, crash_and_retry):
    source = tmp_path / uuid.uuid4().hex
    source.mkdir()
    for name, content in files.items():
        (source / name).write_bytes(content)
    given_files = [p for p in source.iterdir() if p.is_file() and not p.name.endswith((".part", ".tmp",
                                                                                     ".partial", ".crdownload"))]
    batch = stage_copy(source, runtime.settings.folders)
    kept_back = tmp_path / f"{batch.name}-copy"
    shutil.copytree(batch, kept_back)

    outcomes = runtime.intake.take_in(batch_files(batch), AS_OF)
    if crash_and_retry:  # a crash before the staged files were removed: the batch is taken up again
        for path in kept_back.iterdir():
            if path.name[:4].isdigit() and any(o.file == path.name and o.outcome == "quarantined"
                                               for o in outcomes):
                shutil.copy2(path, batch / path.name)
        again = runtime.intake.take_in(batch_files(batch), AS_OF)
        assert {o.quarantine_id for o in again} <= {o.quarantine_id for o in outcomes}
    close_batch(batch)

    assert len(outcomes) == len(given_files)
    assert {o.outcome for o in outcomes} <= OUTCOMES
    assert len({o.file for o in outcomes}) == len(outcomes), "each file decided exactly once"
    quarantined = [o for o in outcomes if o.outcome == "quarantined"]
    for outcome in outcomes:
        event(outcome.reason_code or outcome.outcome)
    assert all(o.case_number for o in outcomes if o.outcome != "quarantined")
    with runtime.store.session() as session:
        rows = session.scalars(select(QuarantinedFile).where(
            QuarantinedFile.stored_path.like(f"%{batch.name}%"))).all()
        duplicated_plans = session.execute(select(Case.plan_id).group_by(Case.plan_id)
                                           .having(func.count() > 1)).all()
    assert sorted(r.id for r in rows) == sorted(o.quarantine_id for o in quarantined)
    assert duplicated_plans == []
    stored = runtime.settings.quarantine_dir / batch.name
    copies = [p for p in stored.iterdir() if not p.name.endswith(".reason")] if stored.exists() else []
    assert len(copies) == len(quarantined), "one quarantine copy per file, however often it was tried"
    for row in rows:
        assert Path(row.stored_path).exists() and Path(row.stored_path + ".reason").exists()
    assert not batch.exists(), "staging is left empty"
