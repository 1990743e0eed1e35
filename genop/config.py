"""The agreement as data: ``config/agreement.yaml``, typed and validated on load.

Every figure of the agreement (parties, a-conto, DAGS tariffs, Bilag 3 diagnosis groups,
Bilag 8 service levels, deadlines) lives in the YAML file, so a tariff change is a data
change with a validity date, never a code change. ``load_agreement`` turns every problem
into a :class:`genop.errors.ConfigError` naming the file and the key path.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from genop.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AGREEMENT_FILE = REPO_ROOT / "config" / "agreement.yaml"

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


class _Problems(ValueError):
    """Raised by validators to report problems at key paths *below* the validated model."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems


def _check(problems: list[Problem]) -> None:
    if problems:
        raise _Problems(problems)


def _exact_decimal(value: Any) -> Any:
    """Money, shares and hours must be quoted strings or ints: a YAML float is not exact."""
    if isinstance(value, (float, bool)):
        raise ValueError(f'write {value!r} as a quoted string (e.g. "{value}") so it loads exactly')
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_exact_decimal)]
Share = Annotated[Decimal, BeforeValidator(_exact_decimal), Field(ge=0, le=1)]


def _code(pattern: str, what: str, *, upper: bool = True) -> BeforeValidator:
    """A code checked against its format, with a message naming the format (not the regex)."""
    regex = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper() if upper else value.strip()
            if not regex.match(value):
                raise ValueError(f"{value!r} is not {what}")
        return value

    return BeforeValidator(check)


Icd10Prefix = Annotated[str, _code(r"^D[A-Z][0-9A-Z]{0,6}$", "an ICD-10 prefix in SKS form (e.g. DS72)")]
SksCode = Annotated[str, _code(r"^[A-Z][0-9A-Z]{1,9}$", "an SKS procedure code (e.g. BLNR)")]
Email = Annotated[str, _code(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "a mail address", upper=False)]
Count = Annotated[int, Field(ge=0)]
ReasonKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


def _fill_keys(mapping: Any, field: str = "key") -> Any:
    """Let the YAML imply ``key`` from the mapping key instead of repeating it."""
    if not isinstance(mapping, dict):
        return mapping
    for name, item in mapping.items():
        if isinstance(item, dict) and item.get(field, name) != name:
            raise ValueError(f"{field} {item[field]!r} differs from its mapping key {name!r}")
    return {name: {field: name, **item} if isinstance(item, dict) else item for name, item in mapping.items()}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Contact(_Model):
    """A contact point (agreement §5, Bilag 5): a person or a unit's shared address."""

    name: str
    title: str | None = None
    organisation: str | None = None
    address: str | None = None
    phone: str | None = None
    fax: str | None = None
    email: Email | None = None


class Party(_Model):
    """A party or contact point of the agreement (agreement §1, Bilag 5, Bilag 6)."""

    key: str
    name: str
    kind: Literal["municipality", "contractor", "transport_provider", "office", "training_centre"]
    municipality_code: str | None = Field(default=None, pattern=r"^\d{3}$")
    ean: str | None = Field(default=None, pattern=r"^\d{13}$")
    cvr: str | None = Field(default=None, pattern=r"^\d{8}$")
    """CVR number (Danish business register); the seller identity on OIOUBL invoices."""
    contact: Contact | None = None
    handled_by: str | None = None
    """Party key acting for this one (Dragør -> Tårnby, sub-agreement §2)."""
    transport_provider: str | None = None
    transport_cases_office: str | None = None
    """Office handling transport cases under SUL §171 (Dragør Borgerservice, sub-agreement §2)."""
    receives_final_status_copy: bool = False
    """Told by Tårnby when its citizen's course is completed with the final status shared
    (sub-agreement §7, keeping Dragør informed); the mail is ``templates/mail/completed_<key>``."""
    belongs_to: str | None = None
    training_unit: str | None = None
    """Where citizens on the route named by this party's key train, and transport takes them
    (agreement §1: Copenhagen's training unit; §3.1: Løjtegårdsvej)."""
    placeholder: bool = False
    """Details not in the agreement: staff must fill them in."""
    note: str | None = None

    @field_validator("ean")
    @classmethod
    def _ean_check_digit(cls, ean: str | None) -> str | None:
        if ean is not None:
            digits = [int(c) for c in reversed(ean)]
            weighted = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[1:], start=1))
            if (10 - weighted % 10) % 10 != digits[0]:
                raise ValueError(f"EAN {ean} has a wrong check digit")
        return ean

    @field_validator("cvr")
    @classmethod
    def _cvr_modulus_11(cls, cvr: str | None) -> str | None:
        if cvr is not None and sum(int(c) * w for c, w in zip(cvr, (2, 7, 6, 5, 4, 3, 2, 1), strict=True)) % 11:
            raise ValueError(f"CVR {cvr} fails the modulus-11 check")
        return cvr


class ScopeRules(_Model):
    """Who and what can be forwarded to Copenhagen (agreement §2, §3, §4, Bilag 2)."""

    adult_age: int = Field(ge=0, le=120)
    forwardable_levels: tuple[str, ...]
    region_levels: tuple[str, ...]
    """Genoptræning på specialiseret niveau: needs hospital expertise, the region's (§4, Bilag 2)."""
    residence_municipality_levels: tuple[str, ...]
    """Rehabilitering på specialiseret niveau (sub-agreement §1): not under this agreement and
    not the region's either; the residence municipality's own task."""
    not_forwarded_levels: tuple[str, ...]
    served_municipalities: tuple[str, ...]

    @model_validator(mode="after")
    def _levels_disjoint(self) -> ScopeRules:
        seen: dict[str, str] = {}
        for field in ("forwardable_levels", "region_levels", "residence_municipality_levels",
                      "not_forwarded_levels"):
            for i, level in enumerate(getattr(self, field)):
                if level in seen:
                    raise _Problems([((field, i), f"level {level!r} is also in {seen[level]}")])
                seen[level] = field
        return self


class GeriatricRouting(_Model):
    """Agreement §3.1, §4: geriatric patients to Løjtegårdsvej unless Tårnby chooses Copenhagen
    for a case; ~10% expected in Copenhagen — a capacity-planning figure, never a quota."""

    copenhagen_share: Share
    """The share of the year's geriatric cases expected in Copenhagen (shown, not enforced)."""
    reasons: dict[ReasonKey, Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """The closed list of reasons for sending a case to Copenhagen: key → the text staff read."""


class Staffing(_Model):
    """Bilag 8 skema 1: staffing per diagnosis in the H:S region, 2004."""

    region_patients: Count
    posts: ExactDecimal
    posts_transferred: ExactDecimal
    therapist_hours_per_patient: ExactDecimal
    municipal_patients: Count


class DiagnosisGroup(_Model):
    """A Bilag 3 diagnosis group: planning figures, route, service level and ICD-10 prefixes."""

    key: str
    name_da: str
    name_en: str
    covered: bool
    default_route: Literal["copenhagen", "lojtegaardsvej", "rejected"]
    choice: Literal["tarnby"] | None = None
    """Who chooses the route per case (agreement §4 "hvor Tårnby Kommune vælger"): the default
    route unless that party sends the case to Copenhagen (genop.routing)."""
    icd10_prefixes: tuple[Icd10Prefix, ...]
    expected_patients: Count | None
    sessions_per_course: int | None = Field(ge=1)
    expected_visits_total: Count | None = None
    expected_visits: dict[str, Count]
    """Bilag 3 visits per tariff group; groups the seed leaves blank ("x"/"—") are absent."""
    service_level_group: int | None
    staffing: Staffing | None = None
    note: str | None

    @field_validator("expected_visits", mode="before")
    @classmethod
    def _drop_blank_figures(cls, value: Any) -> Any:
        return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _route_matches_cover(self) -> DiagnosisGroup:
        if self.covered == (self.default_route == "rejected"):
            covered = str(self.covered).lower()
            raise _Problems([(("default_route",), f"{self.default_route!r} contradicts covered: {covered}")])
        return self


class TariffGroup(_Model):
    """A DAGS tariff group: price per visit and the SKS codes it prices (Bilag 7)."""

    key: str
    price: ExactDecimal = Field(ge=0, decimal_places=2)
    sks_codes: tuple[SksCode, ...] = Field(min_length=1)
    description: str
    sks_names: dict[str, str] = {}

    @model_validator(mode="after")
    def _names_are_codes(self) -> TariffGroup:
        _check([(("sks_names", c), f"{c} is not in sks_codes") for c in self.sks_names if c not in self.sks_codes])
        return self


class TariffTable(_Model):
    """Tariffs in force from ``valid_from`` to ``valid_to`` inclusive (None: until further notice)."""

    name: str
    valid_from: date
    valid_to: date | None = None
    note: str | None = None
    groups: dict[str, TariffGroup] = Field(min_length=1)

    @field_validator("groups", mode="before")
    @classmethod
    def _group_keys(cls, value: Any) -> Any:
        return _fill_keys(value)

    @model_validator(mode="after")
    def _one_group_per_code(self) -> TariffTable:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise _Problems([(("valid_to",), f"{self.valid_to} is before valid_from {self.valid_from}")])
        owner: dict[str, str] = {}
        for group in self.groups.values():
            for code in group.sks_codes:
                if code in owner:
                    raise _Problems([(("groups", group.key, "sks_codes"), f"{code} is also in {owner[code]}")])
                owner[code] = group.key
        return self

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    @cached_property
    def group_by_code(self) -> dict[str, str]:
        return {code: group.key for group in self.groups.values() for code in group.sks_codes}


class Deadlines(_Model):
    """Health Act §140(4) free choice after 7 days; agreement §8 payment term; §10 mediation."""

    free_choice_days: int = Field(ge=1)
    payment_term_days: int = Field(ge=1)
    mediation_meeting_days: int = Field(ge=1)


class Aconto(_Model):
    """The monthly a-conto prepayment (cost guarantee, *omkostningsgaranti*), agreement §8."""

    monthly_total: ExactDecimal = Field(gt=0)
    split: dict[str, Share] = Field(min_length=1)
    annual_level: ExactDecimal = Field(gt=0)
    due: Literal["first_working_day_of_month"] = "first_working_day_of_month"
    refund_month: int = Field(default=1, ge=1, le=12)

    @model_validator(mode="after")
    def _sums(self) -> Aconto:
        total = sum(self.split.values(), Decimal(0))
        if total != 1:
            raise _Problems([(("split",), f"shares must sum to 1 (got {total})")])
        if self.annual_level != self.monthly_total * 12:
            raise _Problems([(("annual_level",), f"must be 12 x monthly_total ({self.monthly_total * 12})")])
        return self


class TermPeriod(_Model):
    """One recorded term of the agreement, dates inclusive: the original term (§12) or a
    prolongation. ``valid_to`` None: until terminated by notice (§12)."""

    valid_from: date
    valid_to: date | None = None
    basis: str = Field(min_length=1)
    """What decided it: "agreement §12", or the decision (body, date) that prolonged it."""
    note: str | None = None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class Terms(_Model):
    """Agreement foreword, §8, §12; sub-agreement §6 (annual report), §8 (meetings)."""

    in_force_from: date
    original_term_end: date
    termination_notice_months: int = Field(ge=1)
    cost_based_regulation_from: date
    annual_report_month: int = Field(ge=1, le=12)
    annual_report_pages: int = Field(ge=1)
    cooperation_meeting_interval_months: int = Field(ge=1)
    periods: tuple[TermPeriod, ...] = Field(min_length=1)
    """The term and its prolongations, effective-dated (agreement §12), in date order."""

    @model_validator(mode="after")
    def _periods_in_order(self) -> Terms:
        first = self.periods[0]
        if (first.valid_from, first.valid_to) != (self.in_force_from, self.original_term_end):
            raise _Problems([(("periods", 0), f"the first period must be the original term, {self.in_force_from} "
                                              f"to {self.original_term_end} (in_force_from, original_term_end)")])
        for i, period in enumerate(self.periods):
            if period.valid_to is not None and period.valid_to < period.valid_from:
                raise _Problems([(("periods", i, "valid_to"), f"{period.valid_to} is before valid_from "
                                                              f"{period.valid_from}")])
        for i, (before, after) in enumerate(itertools.pairwise(self.periods), start=1):
            if before.valid_to is None or after.valid_from <= before.valid_to:
                until = "until further notice" if before.valid_to is None else f"to {before.valid_to}"
                raise _Problems([(("periods", i, "valid_from"), f"{after.valid_from} overlaps periods.{i - 1} "
                                                                f"({before.valid_from} {until}); list periods "
                                                                "in date order without overlaps")])
        return self


class ServiceLevelNorms(_Model):
    full_time_year_hours: int = Field(gt=0)
    overhead_share: Share


class ServiceLevel(_Model):
    """A Bilag 8 resource group: therapist time per course."""

    group: int
    individual_hours: ExactDecimal = Field(ge=0)
    group_hours: ExactDecimal = Field(ge=0)
    group_ratio: Literal[4, 8]
    therapist_hours_per_patient: ExactDecimal = Field(gt=0)
    training_hours_per_patient: ExactDecimal = Field(gt=0)
    typical_weeks: int = Field(ge=1)
    description: str

    @model_validator(mode="after")
    def _training_time(self) -> ServiceLevel:
        """Bilag 8 prints training time = individual + group hours / ratio (rounded to 0.1)."""
        expected = self.individual_hours + self.group_hours / self.group_ratio
        if abs(expected - self.training_hours_per_patient) > Decimal("0.05"):
            message = f"must be individual_hours + group_hours / group_ratio ({expected.normalize()})"
            raise _Problems([(("training_hours_per_patient",), message)])
        return self


class EscalationThresholds(_Model):
    """When a case or the budget is 'at risk' (sub-agreement §7), in force from ``valid_from`` until
    the next entry's. Defaults, not agreement figures: the parties tune them by adding an entry."""

    valid_from: date
    note: str | None = None
    consent_reminder_after_days: int = Field(ge=1)
    consent_missing_after_days: int = Field(ge=1)
    persisting_after_days: int = Field(ge=1)
    forward_deadline_days: int = Field(ge=0)
    start_by_warning_days: int = Field(ge=0)
    urgent_start_days: int = Field(default=1, ge=0)
    service_level_overrun_factor: ExactDecimal = Field(ge=1)
    duration_overrun_factor: ExactDecimal = Field(ge=1)
    budget_warning_share: Share
    readiness_warning_share: Share
    municipality_budgets: dict[str, ExactDecimal] = {}
    no_visit_after_days: int = Field(default=14, ge=1)
    """A course in training with no visit for this many calendar days (V) is a breach."""
    service_level_warning_factor: ExactDecimal = Field(default=Decimal("1.00"), ge=1)
    """Delivered training above this factor x the norm is a warning (above the overrun factor: a breach)."""
    report_open_days: int = Field(default=14, ge=0)
    """A "plan cannot be followed" report or a send-back stays a finding this many days after it."""
    forecast_run_rate_months: int = Field(default=3, ge=1, le=11)
    """The budget forecast's run rate is the cost of the last this-many full months of the year
    (fewer early in the year); in January it falls back to Bilag 3's expected course mix."""
    readiness_from_month: int = Field(default=4, ge=1, le=12)
    """From this month of the year the readiness-clause forecast (004 §8) is meaningful."""

    @model_validator(mode="after")
    def _levels_in_order(self) -> EscalationThresholds:
        if self.consent_missing_after_days < self.consent_reminder_after_days:
            raise _Problems([(("consent_missing_after_days",), "must not be less than consent_reminder_after_days "
                                                               f"({self.consent_reminder_after_days})")])
        if self.service_level_overrun_factor < self.service_level_warning_factor:
            raise _Problems([(("service_level_overrun_factor",), "must not be less than "
                                                                 "service_level_warning_factor "
                                                                 f"({self.service_level_warning_factor})")])
        return self


class TextLimits(_Model):
    """Longest text, in characters, per kind of plan field (PLAN_FORMAT.md states no lengths)."""

    plan_id: int = Field(gt=0, le=128)  # the store's plan_id column holds 128 characters
    short_text: int = Field(gt=0)
    description: int = Field(gt=0)
    other_text: int = Field(gt=0)


class Limits(_Model):
    """Technical bounds on input, not from the agreement: implausible input is refused."""

    max_plan_bytes: int = Field(gt=0)
    max_age_years: int = Field(gt=0)
    max_chars: TextLimits


NoticeLevel = Literal["warning", "breach", "persisting"]
CONCERNED = "concerned"
"""In ``escalation_notices``: the municipality a finding is about (the citizen's, the budget's; both
municipalities for the shared budget)."""


class EscalationNotices(_Model):
    """Who is told of a finding at risk (sub-agreement §7: Tårnby tells Dragør "as it happens"), per
    concern (case_time / service_level / budget / dispute) and level. A recipient is a party key or
    ``concerned``. Whatever is listed, a municipality other than the one concerned (or the one
    handling its cases, ``handled_by``) is never told of a citizen's case (genop.escalation.notices)."""

    sender: str
    case_time: dict[NoticeLevel, tuple[str, ...]]
    service_level: dict[NoticeLevel, tuple[str, ...]]
    budget: dict[NoticeLevel, tuple[str, ...]]
    dispute: dict[NoticeLevel, tuple[str, ...]]
    """A dispute's findings (agreement §10: mediation overdue, open too long)."""

    def recipients(self, concern: str, level: str) -> tuple[str, ...]:
        by_level: dict[str, tuple[str, ...]] = getattr(self, concern)
        return by_level.get(level, ())


class Disputes(_Model):
    """Agreement §10 (Tvister): what a dispute may be about, and the mediation rule."""

    sender: str
    mediation_within_days: int = Field(ge=1)
    """The mediation meeting is held within this many calendar days of the call (§10: 8)."""
    mediation_parties: tuple[str, ...] = Field(min_length=1)
    """Who is called to mediation: party keys or ``concerned`` (the municipality the dispute is about)."""
    open_warning_days: int = Field(ge=1)
    """A dispute still ``open`` (no mediation called) this many days after it was opened is a finding."""
    kinds: dict[str, str] = Field(min_length=1)
    """The closed list of what a dispute is about: key (what staff type and read) -> Danish label."""

    @field_validator("kinds")
    @classmethod
    def _keys(cls, kinds: dict[str, str]) -> dict[str, str]:
        bad = [key for key in kinds if not re.fullmatch(r"[a-z][a-z_]*", key)]
        if bad:
            raise ValueError(f"a dispute kind is lowercase letters and underscores, not {', '.join(bad)}")
        return kinds


class Agreement(_Model):
    """The whole agreement; cross-references between sections are checked on load."""

    parties: dict[str, Party]
    scope: ScopeRules
    geriatric_routing: GeriatricRouting
    diagnosis_groups: dict[str, DiagnosisGroup] = Field(min_length=1)
    deadlines: Deadlines
    aconto: Aconto
    terms: Terms
    tariffs: tuple[TariffTable, ...]
    service_level_norms: ServiceLevelNorms
    service_levels: dict[int, ServiceLevel] = Field(min_length=1)
    escalation: tuple[EscalationThresholds, ...]
    limits: Limits
    escalation_notices: EscalationNotices
    disputes: Disputes

    @field_validator("parties", "diagnosis_groups", "service_levels", mode="before")
    @classmethod
    def _mapping_keys(cls, value: Any, info: ValidationInfo) -> Any:
        return _fill_keys(value, "group" if info.field_name == "service_levels" else "key")

    @field_validator("tariffs")
    @classmethod
    def _effective_dating(cls, tables: tuple[TariffTable, ...]) -> tuple[TariffTable, ...]:
        """One table in force on any day, all with the same tariff groups (agreement §8)."""
        if not tables:
            raise _Problems([((), "at least one tariff table is needed")])
        from genop.settlement.rules import first_overlap  # the rule's home; it imports this module

        overlap = first_overlap(tables)
        if overlap is not None:
            before, after = overlap
            a, b = tables[before], tables[after]
            raise _Problems([((after, "valid_from"), f"{b.name!r} overlaps {a.name!r} (tariffs.{before})")])
        for i, table in enumerate(tables):
            if set(table.groups) != set(tables[0].groups):
                message = f"groups {sorted(table.groups)} differ from tariffs.0 {sorted(tables[0].groups)}"
                raise _Problems([((i, "groups"), message)])
        return tables

    @field_validator("escalation")
    @classmethod
    def _escalation_dating(cls, entries: tuple[EscalationThresholds, ...]) -> tuple[EscalationThresholds, ...]:
        if not entries:
            raise _Problems([((), "at least one entry of thresholds is needed")])
        for i in range(1, len(entries)):
            if entries[i].valid_from <= entries[i - 1].valid_from:
                raise _Problems([((i, "valid_from"), f"must be later than escalation.{i - 1}.valid_from "
                                                     f"({entries[i - 1].valid_from.isoformat()})")])
        return entries

    @model_validator(mode="after")
    def _references(self) -> Agreement:
        _check([*self._party_problems(), *self._group_problems(), *self._municipality_key_problems(),
                *self._notice_problems(), *self._dispute_problems()])
        return self

    def _party_problems(self) -> Iterator[Problem]:
        allowed = {"handled_by": ("municipality",), "transport_provider": ("transport_provider",),
                   "transport_cases_office": ("office",), "belongs_to": ("municipality", "contractor"),
                   "training_unit": ("training_centre",)}
        codes: dict[str, str] = {}
        for key, party in self.parties.items():
            for field, kinds in allowed.items():
                ref = getattr(party, field)
                if ref is not None and (ref not in self.parties or self.parties[ref].kind not in kinds):
                    yield ("parties", key, field), f"{ref!r} is not a party of kind {' or '.join(kinds)}"
            code = party.municipality_code
            if code is not None and codes.setdefault(code, key) != key:
                yield ("parties", key, "municipality_code"), f"{code} is also the code of {codes[code]}"
        for i, code in enumerate(self.scope.served_municipalities):
            if code not in codes:
                yield ("scope", "served_municipalities", i), f"no party has municipality code {code}"

    def _group_problems(self) -> Iterator[Problem]:
        owner: dict[str, str] = {}
        for key, group in self.diagnosis_groups.items():
            for i, prefix in enumerate(group.icd10_prefixes):
                if owner.setdefault(prefix, key) != key:
                    yield ("diagnosis_groups", key, "icd10_prefixes", i), f"{prefix} is also in {owner[prefix]}"
            if group.service_level_group is not None and group.service_level_group not in self.service_levels:
                yield (("diagnosis_groups", key, "service_level_group"),
                       f"no service level group {group.service_level_group}")
            for tariff in group.expected_visits.keys() - self.tariffs[0].groups.keys():
                yield ("diagnosis_groups", key, "expected_visits", tariff), f"unknown tariff group {tariff}"
            if group.default_route != "rejected" and group.default_route not in self.parties:
                yield ("diagnosis_groups", key, "default_route"), f"no party {group.default_route!r}"
            if group.choice is not None and (not group.covered or group.default_route in ("copenhagen", "rejected")):
                yield (("diagnosis_groups", key, "choice"),
                       "a choice needs a covered group whose default route is not copenhagen or rejected")

    def _municipality_key_problems(self) -> Iterator[Problem]:
        places: list[tuple[tuple[str | int, ...], Any]] = [(("aconto", "split"), self.aconto.split)]
        places += [(("escalation", i, "municipality_budgets"), entry.municipality_budgets)
                   for i, entry in enumerate(self.escalation)]
        for where, keys in places:
            for key in keys:
                if key not in self.parties or self.parties[key].kind != "municipality":
                    yield (*where, key), f"{key!r} is not a municipality party"

    def _notice_problems(self) -> Iterator[Problem]:
        notices = self.escalation_notices
        if notices.sender not in self.parties:
            yield ("escalation_notices", "sender"), f"no party {notices.sender!r}"
        for concern in ("case_time", "service_level", "budget", "dispute"):
            for level, recipients in getattr(notices, concern).items():
                for i, key in enumerate(recipients):
                    if key != CONCERNED and key not in self.parties:
                        yield (("escalation_notices", concern, level, i),
                               f"{key!r} is neither a party nor {CONCERNED!r}")

    def _dispute_problems(self) -> Iterator[Problem]:
        disputes = self.disputes
        if disputes.sender not in self.parties:
            yield ("disputes", "sender"), f"no party {disputes.sender!r}"
        for i, key in enumerate(disputes.mediation_parties):
            if key != CONCERNED and key not in self.parties:
                yield ("disputes", "mediation_parties", i), f"{key!r} is neither a party nor {CONCERNED!r}"

    # -- look-ups -------------------------------------------------------------------------

    @property
    def chosen_groups(self) -> tuple[str, ...]:
        """The diagnosis groups whose route Tårnby chooses per case (agreement §4), e.g. geriatric."""
        return tuple(key for key, group in self.diagnosis_groups.items() if group.choice is not None)

    def party(self, key: str) -> Party:
        if key not in self.parties:
            raise ConfigError(f"unknown party {key!r} (known: {', '.join(sorted(self.parties))})")
        return self.parties[key]

    def municipality_for_code(self, code: str) -> Party | None:
        return next((p for p in self.parties.values() if p.municipality_code == code.strip()), None)

    def escalation_on(self, day: date) -> EscalationThresholds:
        """The thresholds in force on ``day``; before the first entry, the first entry's."""
        return next((e for e in reversed(self.escalation) if e.valid_from <= day), self.escalation[0])

    def annual_budget(self, municipality: str, day: date) -> Decimal:
        """The configured annual budget in force on ``day``; by default the municipality's share of
        the a-conto level."""
        budget = self.escalation_on(day).municipality_budgets.get(municipality)
        if budget is None:
            share = self.aconto.split[self.party(municipality).key]
            budget = (self.aconto.annual_level * share).quantize(Decimal("0.01"))
        return budget

    @cached_property
    def icd10_index(self) -> dict[str, str]:
        """Cached; a ``model_copy(update=...)`` that changes diagnosis_groups must revalidate instead."""
        return {prefix: g.key for g in self.diagnosis_groups.values() for prefix in g.icd10_prefixes}

    def group_for_icd10(self, code: str) -> str | None:
        """The diagnosis group of an ICD-10 code by its longest listed prefix.

        Accepts the SKS form ("DS720"), a dotted code ("DS72.0") and a bare ICD-10 code
        ("S72.0"), in any case.
        """
        normal = re.sub(r"[\s.]", "", code).upper()
        if re.match(r"^[A-Z]\d", normal):
            normal = "D" + normal
        return longest_prefix(normal, self.icd10_index, shortest=2)


def longest_prefix(code: str, index: dict[str, str], shortest: int) -> str | None:
    """Hierarchical codes (ICD-10, SKS): the entry of the longest prefix of ``code`` listed."""
    return next((index[code[:n]] for n in range(len(code), shortest - 1, -1) if code[:n] in index), None)


# -- loading ----------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _describe(error: Any) -> list[str]:
    loc = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _Problems):
        return [f"{'.'.join(map(str, loc + sub))}: {msg}" for sub, msg in cause.problems]
    return [f"{'.'.join(map(str, loc)) or '(top level)'}: {error['msg'].removeprefix('Value error, ')}"]


def load_agreement(path: Path | None = None) -> Agreement:
    """Read and validate the agreement; every problem is a ConfigError naming file and key."""
    path = Path(path) if path is not None else DEFAULT_AGREEMENT_FILE
    shown = _display(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot be read ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{shown}: invalid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: must be a YAML mapping of sections (parties, scope, tariffs, ...)")
    try:
        return Agreement.model_validate(data)
    except ValidationError as exc:
        lines = [line for error in exc.errors() for line in _describe(error)]
        raise ConfigError("\n".join(f"{shown}: {line}" for line in lines)) from exc
