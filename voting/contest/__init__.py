"""The contest model: an edition's categories, calendar and rules.

Instants are stored as aware UTC datetimes and only turned into wall time for people.
Edition files give wall time in the edition's zone (Geneva for every real edition), and
the IANA database decides what that wall time means; a wall time that the clocks skip or
show twice is refused rather than guessed, because a deadline an hour off is a deadline
that voters and organizers will dispute.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..i18n import DEFAULT_LANGUAGE, LANGUAGES, Localized
from .rules import EditionRules

__all__ = [
    "GENEVA",
    "PHASES",
    "Category",
    "Edition",
    "EditionFileError",
    "EditionRules",
    "Phase",
    "builtin_edition_path",
    "load_edition_file",
    "local_to_utc",
    "parse_edition",
    "to_local",
]

GENEVA = ZoneInfo("Europe/Zurich")
PHASES = ("nominations", "review", "voting", "expert_review", "results")

_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
# Category codes end up in URLs and exports, so keep them to plain ASCII.
_CATEGORY_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_WALL_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$")
_RELATIVE_RE = re.compile(r"^([+-]?)(\d+)([smhd])$")
_RELATIVE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# Only the name of the built-in file is interpolated into a path; refuse anything that
# could climb out of the editions directory.
_BUILTIN_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")

_TOP_LEVEL_KEYS = (
    "slug",
    "name",
    "timezone",
    "rehearsal",
    "rules",
    "categories",
    "phases",
    "translations",
)
_CATEGORY_KEYS = ("code", "name", "description", "facilitator", "translations")
_PHASE_KEYS = ("opens", "closes", "opens_in", "closes_in")

# Present in most zoneinfo directories but not IANA zones: "localtime" is whatever the
# host is set to, "posixrules" a build artefact and "Factory" means "zone not set".
_NOT_IANA_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class EditionFileError(ValueError):
    """An edition file (or a wall time in it) that cannot be used as written.

    ``problem`` is the bare description, ``field`` the dotted path of the offending value
    (e.g. ``phases.voting.closes``) and ``source`` the file; the message combines them.
    """

    def __init__(self, problem: str, *, field: str | None = None, source: str | None = None):
        self.problem = problem
        self.field = field
        self.source = source
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


def _format_wall(local: datetime) -> str:
    text = f"{local:%Y-%m-%d %H:%M}"
    if local.second or local.microsecond:
        text += f":{local:%S}"
    if local.microsecond:
        text += f".{local.microsecond:06d}"
    return text


def _format_offset(offset: timedelta | None) -> str:
    if offset is None:
        raise ValueError("expected an aware datetime")
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    # Only historic local mean times have second offsets; show them rather than round.
    return f"{text}:{seconds:02d}" if seconds else text


def _iso_utc(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value.isoformat()}")


def _offset_at(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    if offset is None:  # ZoneInfo always answers for an aware datetime
        raise ValueError(f"{_tz_name(tz)} gives no UTC offset for {instant.isoformat()}")
    return offset


def _transition_between(earlier: datetime, later: datetime, tz: ZoneInfo) -> datetime:
    """First instant (whole second) after ``earlier`` that has ``later``'s UTC offset.

    Used only to word an error message, so a bisection over at most a few hours of
    seconds is cheap, and it finds the change wherever the IANA data puts it instead of
    assuming that clocks change on the hour.
    """
    target = _offset_at(later, tz)
    lo = int(earlier.timestamp())
    hi = int(later.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(datetime.fromtimestamp(mid, UTC), tz) == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _tz_name(tz: ZoneInfo) -> str:
    return tz.key or str(tz)


def local_to_utc(local: datetime, tz: ZoneInfo = GENEVA) -> datetime:
    """The UTC instant a naive wall time in ``tz`` denotes.

    Raises EditionFileError when the wall time does not exist (the clocks skip it) or
    exists twice (the clocks show it twice): either way any answer would be a guess.
    """
    if local.tzinfo is not None:
        raise ValueError(f"local_to_utc expects a naive wall time, got {local.isoformat()}")
    # zoneinfo resolves fold=0 with the offset in force before a transition and fold=1
    # with the one after; they agree exactly when the wall time is unambiguous.
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first == second:
        return first
    earlier, later = sorted((first, second))
    change = _transition_between(earlier, later, tz)
    wall_after = change.astimezone(tz).replace(tzinfo=None)
    wall_before = wall_after + (_offset_at(earlier, tz) - _offset_at(later, tz))
    if wall_before.date() == wall_after.date() == local.date():
        jump = f"from {wall_before:%H:%M} to {wall_after:%H:%M} that night"
    else:
        # Zones have skipped whole days (Pacific/Apia, end of 2011); times alone would
        # read as "from 00:00 to 00:00".
        jump = f"from {_format_wall(wall_before)} to {_format_wall(wall_after)}"
    if first.astimezone(tz).replace(tzinfo=None) != local:
        # In a gap neither reading survives the round trip back to wall time.
        raise EditionFileError(
            f"{_format_wall(local)} does not exist in {_tz_name(tz)} (clocks jump {jump})"
        )
    raise EditionFileError(
        f"{_format_wall(local)} happens twice in {_tz_name(tz)} (clocks go back {jump})"
    )


def to_local(instant: datetime, tz: ZoneInfo = GENEVA) -> datetime:
    """An aware instant as aware wall time in ``tz``."""
    _require_aware(instant, "instant")
    return instant.astimezone(tz)


def translations_of(**texts: str) -> dict[str, dict[str, str]]:
    """{lang: {field: text}} from fields that are Localized: what the database keeps and
    the API shows beside the English text."""
    out: dict[str, dict[str, str]] = {}
    for key, text in texts.items():
        if isinstance(text, Localized):
            for lang, other in text.translations.items():
                out.setdefault(lang, {})[key] = other
    return out


def localize(
    texts: Mapping[str, str], translations: Mapping[str, Mapping[str, str]] | None
) -> dict[str, Localized]:
    """The inverse of translations_of: each field's English text with its translations."""
    translations = translations or {}
    return {
        key: Localized(
            text,
            {lang: fields.get(key, "") for lang, fields in translations.items()},
        )
        for key, text in texts.items()
    }


@dataclass(frozen=True)
class Category:
    code: str
    name: str  # a Localized text when the edition gives translations
    facilitator: str
    position: int
    description: str = ""  # likewise

    @property
    def translations(self) -> dict[str, dict[str, str]]:
        return translations_of(name=self.name, description=self.description)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": str.__str__(self.name),
            "description": str.__str__(self.description),
            "facilitator": self.facilitator,
            "position": self.position,
            "translations": self.translations,
        }


@dataclass(frozen=True)
class Phase:
    name: str
    opens_at: datetime
    closes_at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.opens_at, f"phase {self.name} opens_at")
        _require_aware(self.closes_at, f"phase {self.name} closes_at")
        # Normalise so that equality, hashing and serialisation never depend on which
        # zone the caller happened to build the datetime in.
        object.__setattr__(self, "opens_at", self.opens_at.astimezone(UTC))
        object.__setattr__(self, "closes_at", self.closes_at.astimezone(UTC))
        if self.closes_at <= self.opens_at:
            raise ValueError(
                f"phase {self.name} closes at {_iso_utc(self.closes_at)}, "
                f"not after it opens at {_iso_utc(self.opens_at)}"
            )

    def contains(self, instant: datetime) -> bool:
        # Half-open: a vote stamped exactly at the deadline is late, and back-to-back
        # phases never both claim the instant where one hands over to the next.
        _require_aware(instant, "instant")
        return self.opens_at <= instant < self.closes_at

    def to_dict(self, tz: ZoneInfo = GENEVA) -> dict[str, Any]:
        opens_local = to_local(self.opens_at, tz)
        closes_local = to_local(self.closes_at, tz)
        return {
            "name": self.name,
            "opens_utc": _iso_utc(self.opens_at),
            "closes_utc": _iso_utc(self.closes_at),
            "opens_local": opens_local.isoformat(),
            "closes_local": closes_local.isoformat(),
            "utc_offset_opens": _format_offset(opens_local.utcoffset()),
            "utc_offset_closes": _format_offset(closes_local.utcoffset()),
        }


@dataclass(frozen=True)
class Edition:
    slug: str
    name: str
    timezone: str
    categories: tuple[Category, ...]
    phases: tuple[Phase, ...]
    rules: EditionRules = field(hash=False)
    is_rehearsal: bool = False
    # The stored edition's last change (editions.updated_at in microseconds; 0 for one read
    # from a file): the voting window in Redis is never replaced by an older revision.
    revision: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        names = tuple(phase.name for phase in self.phases)
        if names != PHASES:
            raise ValueError(f"edition {self.slug} phases must be {PHASES}, got {names}")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def translations(self) -> dict[str, dict[str, str]]:
        return translations_of(name=self.name)

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(f"unknown phase {name!r}; phases are {', '.join(PHASES)}")

    def current_phase(self, now: datetime) -> Phase | None:
        """The phase containing ``now``; None before, after, or between phases."""
        for phase in self.phases:
            if phase.contains(now):
                return phase
        return None

    def category(self, code: str) -> Category | None:
        for category in self.categories:
            if category.code == code:
                return category
        return None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        current = self.current_phase(now)
        tz = self.tz
        return {
            "slug": self.slug,
            "name": str.__str__(self.name),
            "translations": self.translations,
            "timezone": self.timezone,
            "is_rehearsal": self.is_rehearsal,
            "current_phase": current.name if current else None,
            "phases": [phase.to_dict(tz) for phase in self.phases],
            "categories": [category.to_dict() for category in self.categories],
            "rules": self.rules.to_json(),
        }


@functools.cache
def _iana_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_IANA_ZONES


def _load_zone(name: object, err: _Errors) -> ZoneInfo:
    if not isinstance(name, str):
        raise err("timezone", f"must be a string such as 'Europe/Zurich', got {name!r}")
    if name not in _iana_zone_names():
        hint = ""
        same_but_case = [z for z in _iana_zone_names() if z.lower() == name.lower()]
        close = same_but_case or difflib.get_close_matches(name, _iana_zone_names(), n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        raise err("timezone", f"{name!r} is not an IANA time zone name{hint}")
    return ZoneInfo(name)


class _Errors:
    """Builds EditionFileErrors that all name the same source."""

    def __init__(self, source: str):
        self.source = source

    def __call__(self, field_path: str | None, problem: str) -> EditionFileError:
        return EditionFileError(problem, field=field_path, source=self.source)


def _unknown_keys(
    table: Mapping[str, Any], allowed: tuple[str, ...], where: str, err: _Errors
) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise err(
                f"{where}.{key}" if where else str(key),
                f"unknown key; {hint}allowed keys are {', '.join(allowed)}",
            )


def _require_table(value: object, field_path: str, err: _Errors) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise err(field_path, f"must be a table, got {type(value).__name__}")
    return value


def _require_text(table: Mapping[str, Any], key: str, where: str, err: _Errors) -> str:
    field_path = f"{where}.{key}" if where else key
    if key not in table:
        raise err(field_path, "is missing")
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise err(field_path, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_translations(
    raw: object, keys: tuple[str, ...], where: str, err: _Errors
) -> dict[str, dict[str, str]]:
    """`translations.fr.name = "..."`: per language (one of the five besides English),
    the same texts as the English ones, each a non-empty string."""
    path = f"{where}.translations" if where else "translations"
    if raw is None:
        return {}
    table = _require_table(raw, path, err)
    others = tuple(lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE)
    _unknown_keys(table, others, path, err)
    out: dict[str, dict[str, str]] = {}
    for lang, fields in table.items():
        inner = _require_table(fields, f"{path}.{lang}", err)
        _unknown_keys(inner, keys, f"{path}.{lang}", err)
        out[lang] = {key: _require_text(inner, key, f"{path}.{lang}", err) for key in inner}
    return out


def _parse_categories(raw: object, err: _Errors) -> tuple[Category, ...]:
    if raw is None:
        raise err("categories", "is missing; add at least one [[categories]] entry")
    if not isinstance(raw, list) or not raw:
        raise err("categories", "must be a non-empty array of [[categories]] tables")
    categories: list[Category] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(raw):
        where = f"categories[{index}]"
        table = _require_table(entry, where, err)
        _unknown_keys(table, _CATEGORY_KEYS, where, err)
        code = _require_text(table, "code", where, err)
        if not _CATEGORY_CODE_RE.match(code):
            raise err(
                f"{where}.code",
                f"{code!r} must be 1 to 32 letters, digits, '-' or '_' (like 'C7-EGOV')",
            )
        # Codes differing only in case would be the same category to any person reading
        # a URL or a spreadsheet.
        if code.lower() in seen:
            raise err(
                f"{where}.code",
                f"duplicate category code {code!r}, already used by {seen[code.lower()]}",
            )
        seen[code.lower()] = where
        description = table.get("description", "")
        if not isinstance(description, str):
            raise err(f"{where}.description", f"must be a string, got {description!r}")
        texts = localize(
            {"name": _require_text(table, "name", where, err), "description": description.strip()},
            _parse_translations(table.get("translations"), ("name", "description"), where, err),
        )
        categories.append(
            Category(
                code=code,
                name=texts["name"],
                facilitator=_require_text(table, "facilitator", where, err),
                position=index + 1,
                description=texts["description"],
            )
        )
    return tuple(categories)


def _parse_instant(
    table: Mapping[str, Any],
    side: str,
    where: str,
    tz: ZoneInfo,
    now: datetime,
    err: _Errors,
) -> datetime:
    absolute_key, relative_key = side, f"{side}_in"
    if absolute_key in table and relative_key in table:
        raise err(where, f"give either {absolute_key} or {relative_key}, not both")
    if relative_key in table:
        return _parse_relative(table[relative_key], f"{where}.{relative_key}", now, err)
    if absolute_key not in table:
        raise err(f"{where}.{absolute_key}", f"is missing (or give {relative_key})")
    field_path = f"{where}.{absolute_key}"
    value = table[absolute_key]
    wall = _parse_wall_time(value, field_path, tz, err)
    try:
        return local_to_utc(wall, tz)
    except EditionFileError as exc:
        raise err(field_path, exc.problem) from None


def _parse_wall_time(value: object, field_path: str, tz: ZoneInfo, err: _Errors) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            # A fixed offset written once is exactly what goes stale when summer time
            # starts or ends between writing the file and the deadline.
            raise err(
                field_path,
                f"{value.isoformat()} carries a UTC offset; write the wall time in "
                f'{_tz_name(tz)} without an offset, e.g. "2014-04-18 23:00"',
            )
        return value
    if isinstance(value, date | time):
        raise err(
            field_path,
            f'{value.isoformat()} needs both a date and a time, e.g. "2014-04-18 23:00"',
        )
    if not isinstance(value, str):
        raise err(field_path, f'must be a wall time like "2014-04-18 23:00", got {value!r}')
    match = _WALL_TIME_RE.match(value.strip())
    if not match:
        raise err(field_path, f'{value!r} is not a wall time like "2014-04-18 23:00"')
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise err(field_path, f"{value!r} is not a real date and time ({exc})") from None


def _parse_relative(value: object, field_path: str, now: datetime, err: _Errors) -> datetime:
    match = _RELATIVE_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise err(
            field_path,
            f'{value!r} is not an offset from now like "-30d" or "+14d" (units s, m, h, d)',
        )
    sign, amount, unit = match.groups()
    delta = timedelta(**{_RELATIVE_UNITS[unit]: int(amount)})
    try:
        instant = now.astimezone(UTC) + (-delta if sign == "-" else delta)
    except OverflowError:
        raise err(field_path, f"{value!r} is too far from now") from None
    # Whole minutes keep the demo calendar readable and stable across a reload within
    # the same minute.
    return instant.replace(second=0, microsecond=0)


def _describe(instant: datetime, tz: ZoneInfo) -> str:
    return f"{_format_wall(to_local(instant, tz).replace(tzinfo=None))} ({_iso_utc(instant)})"


def _parse_phases(raw: object, tz: ZoneInfo, now: datetime, err: _Errors) -> tuple[Phase, ...]:
    if raw is None:
        raise err("phases", f"is missing; add [phases.<name>] tables for {', '.join(PHASES)}")
    table = _require_table(raw, "phases", err)
    _unknown_keys(table, PHASES, "phases", err)
    missing = [name for name in PHASES if name not in table]
    if missing:
        raise err(
            "phases",
            f"missing {', '.join(f'[phases.{name}]' for name in missing)} "
            f"(every edition needs {', '.join(PHASES)})",
        )
    phases: list[Phase] = []
    for name in PHASES:
        where = f"phases.{name}"
        phase_table = _require_table(table[name], where, err)
        _unknown_keys(phase_table, _PHASE_KEYS, where, err)
        opens_at = _parse_instant(phase_table, "opens", where, tz, now, err)
        closes_at = _parse_instant(phase_table, "closes", where, tz, now, err)
        if closes_at <= opens_at:
            raise err(
                where,
                f"closes at {_describe(closes_at, tz)}, which is not after it opens at "
                f"{_describe(opens_at, tz)}",
            )
        if phases and opens_at < phases[-1].closes_at:
            previous = phases[-1]
            raise err(
                f"{where}.opens",
                f"{_describe(opens_at, tz)} is before phases.{previous.name} closes at "
                f"{_describe(previous.closes_at, tz)}; phases must follow one another "
                f"in the order {', '.join(PHASES)} without overlapping",
            )
        phases.append(Phase(name=name, opens_at=opens_at, closes_at=closes_at))
    return tuple(phases)


def parse_edition(data: Mapping[str, Any], *, now: datetime, source: str = "<edition>") -> Edition:
    """Validate a decoded edition file; ``now`` anchors any ``*_in`` relative times."""
    _require_aware(now, "now")
    err = _Errors(source)
    if not isinstance(data, Mapping):
        raise err(None, f"an edition must be a table, got {type(data).__name__}")
    _unknown_keys(data, _TOP_LEVEL_KEYS, "", err)

    slug = data.get("slug")
    if slug is None:
        raise err("slug", "is missing")
    if not isinstance(slug, str) or not _SLUG_RE.match(slug):
        raise err(
            "slug",
            f"{slug!r} must be 2 to 63 lowercase letters, digits or hyphens, starting "
            f"with a letter or digit (pattern {_SLUG_RE.pattern})",
        )
    name = localize(
        {"name": _require_text(data, "name", "", err)},
        _parse_translations(data.get("translations"), ("name",), "", err),
    )["name"]
    timezone = data.get("timezone", _tz_name(GENEVA))
    tz = _load_zone(timezone, err)
    rehearsal = data.get("rehearsal", False)
    if not isinstance(rehearsal, bool):
        raise err("rehearsal", f"must be true or false, got {rehearsal!r}")

    return Edition(
        slug=slug,
        name=name,
        timezone=timezone,
        categories=_parse_categories(data.get("categories"), err),
        phases=_parse_phases(data.get("phases"), tz, now, err),
        rules=EditionRules.parse(data.get("rules"), err),
        is_rehearsal=rehearsal,
    )


def load_edition_file(path: str | Path, *, now: datetime) -> Edition:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise EditionFileError(f"not valid TOML: {exc}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise EditionFileError(f"not UTF-8 text: {exc}", source=str(path)) from None
    return parse_edition(data, now=now, source=str(path))


def builtin_edition_path(name: str) -> Path:
    if not _BUILTIN_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not the name of a built-in edition")
    return Path(__file__).parent.parent / "editions" / f"{name}.toml"
