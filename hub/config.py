"""Configuration: `hub.toml` sections loaded into frozen dataclasses, overridable by
`SMSHUB_<SECTION>__<KEY>` environment variables; anything unknown or invalid is refused
with one line naming the file, the key and what is allowed."""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from hub.errors import ConfigError
from hub.sections import (
    AccountsSection,
    DialectsSection,
    DispatcherSection,
    FtpSection,
    HttpSection,
    HubSection,
    InboundSection,
    MaintenanceSection,
    MessagesSection,
    OutboxSection,
    PortalSection,
    PrivacySection,
    RoutingSection,
    SimulatorSection,
    SmtpSection,
    SpoolSection,
    WebhooksSection,
    XmlSection,
)

T = TypeVar("T")
ENV_PREFIX = "SMSHUB_"
CONFIG_ENV = "SMSHUB_CONFIG"




@dataclass(frozen=True, slots=True)
class Config:
    hub: HubSection = field(default_factory=HubSection)
    spool: SpoolSection = field(default_factory=SpoolSection)
    http: HttpSection = field(default_factory=HttpSection)
    portal: PortalSection = field(default_factory=PortalSection)
    xml: XmlSection = field(default_factory=XmlSection)
    dialects: DialectsSection = field(default_factory=DialectsSection)
    ftp: FtpSection = field(default_factory=FtpSection)
    messages: MessagesSection = field(default_factory=MessagesSection)
    accounts: AccountsSection = field(default_factory=AccountsSection)
    dispatcher: DispatcherSection = field(default_factory=DispatcherSection)
    routing: RoutingSection = field(default_factory=RoutingSection)
    simulator: SimulatorSection = field(default_factory=SimulatorSection)
    maintenance: MaintenanceSection = field(default_factory=MaintenanceSection)
    inbound: InboundSection = field(default_factory=InboundSection)
    outbox: OutboxSection = field(default_factory=OutboxSection)
    smtp: SmtpSection = field(default_factory=SmtpSection)
    webhooks: WebhooksSection = field(default_factory=WebhooksSection)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    # [carriers.NAME] tables, each with a `type`; the adapter package that owns the type
    # checks the rest of its keys when it builds the carrier (hub/ knows no carrier).
    carriers: Mapping[str, CarrierTable] = field(default_factory=dict)
    source: str = "(defaults)"

    @property
    def data_dir(self) -> Path:
        return Path(self.hub.data_dir)

    @property
    def spool_url(self) -> str:
        return self.spool.url or f"sqlite:///{self.data_dir / 'spool.db'}"

    @property
    def node(self) -> str:
        return self.hub.node or os.uname().nodename


@dataclass(frozen=True, slots=True)
class CarrierTable:
    """One `[carriers.NAME]` table as written: its type and its other keys, unchecked
    until the adapter for that type builds the carrier (it names `source` in errors)."""
    name: str
    type: str
    options: Mapping[str, Any]
    source: str


SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Config)[f.name]
    for f in fields(Config) if f.name not in {"source", "carriers"}
}


def default_path() -> Path:
    return Path("hub.toml")


def config_path(path: Path | None, env: Mapping[str, str]) -> Path | None:
    """The file `load` reads: `path`, else $SMSHUB_CONFIG, else ./hub.toml if present."""
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    if path is None and default_path().is_file():
        path = default_path()
    return path


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read `path` (or $SMSHUB_CONFIG, or ./hub.toml if present), then apply env overrides."""
    env = os.environ if env is None else env
    path = config_path(path, env)
    raw: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    sections = {name: dict(raw.pop(name, {}) or {}) for name in SECTIONS}
    carriers = _carrier_tables(raw.pop("carriers", {}), source)
    if raw:
        key = next(iter(raw))
        raise ConfigError(
            f"{source}: unknown section or key '{key}'; allowed sections: "
            f"{', '.join([*SECTIONS, 'carriers'])}"
        )
    overrides = _env_overrides(env)
    built: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        where = source
        values = sections[name]
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        built[name] = _build_section(cls, name, values, overrides.get(name, {}), where)
    config = Config(**built, carriers=carriers, source=source)
    _check_carrier_names(config)
    return config


def build_table(cls: type[T], table: CarrierTable) -> T:
    """A carrier's own settings dataclass from its `[carriers.NAME]` table, checked the
    way every section is: unknown keys, wrong types and bad values name file and key."""
    return cast(T, _build_section(cls, f"carriers.{table.name}", dict(table.options), {},
                                  table.source))


def _carrier_tables(raw: Any, source: str) -> dict[str, CarrierTable]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [carriers] must hold one table per carrier")
    tables: dict[str, CarrierTable] = {}
    for name, table in raw.items():
        where = f"{source}: [carriers.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 40:
            raise ConfigError(f"{where}: a carrier name is letters, digits, - and _ (40 at most)")
        if name == "simulator":
            raise ConfigError(f"{where}: 'simulator' is the built-in carrier ([simulator])")
        options = dict(table)
        kind = options.pop("type", None)
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"{where}: missing key 'type' (for example \"smpp\" or \"http\")")
        tables[name] = CarrierTable(name, kind, options, source)
    return tables


def _check_carrier_names(config: Config) -> None:
    known = {"simulator", *config.carriers}
    named = [("default_carrier", config.routing.default_carrier)]
    named += [("failover", name) for name in config.routing.failover]
    named += [(f"rules #{n} carriers", name)
              for n, rule in enumerate(config.routing.rules, 1) for name in rule.carriers]
    for key, name in named:
        if name not in known:
            raise ConfigError(
                f"{config.source}: [routing] {key}: '{name}' is not a carrier; "
                f"configured: {', '.join(sorted(known))}"
            )


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV or "__" not in var:
            continue
        section, _, key = var[len(ENV_PREFIX):].lower().partition("__")
        if section not in SECTIONS:
            raise ConfigError(f"environment: {var}: unknown section '{section}'")
        out.setdefault(section, {})[key] = value
    return out


def _build_section(
    cls: type[Any], name: str, values: dict[str, Any], env: dict[str, str], source: str
) -> Any:
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(
                f"{source}: [{name}] unknown key '{key}'; allowed: {', '.join(allowed)}"
            )
        kwargs[key] = _coerce(hints[key], value, f"{source}: [{name}] {key}")
    for key, text in env.items():
        var = f"{ENV_PREFIX}{name.upper()}__{key.upper()}"
        if key not in hints:
            raise ConfigError(
                f"environment: {var}: unknown key '{key}'; allowed: {', '.join(allowed)}"
            )
        kwargs[key] = _coerce(hints[key], _parse_env(hints[key], text), f"environment: {var}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{source}: [{name}] {exc}") from None


def _parse_env(hint: Any, text: str) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        return text
    if hint is int:
        try:
            return int(text)
        except ValueError:
            return text
    if hint is float:
        try:
            return float(text)
        except ValueError:
            return text
    if typing.get_origin(hint) is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if typing.get_origin(hint) is list and is_dataclass(typing.get_args(hint)[0]):
        return _tables(typing.get_args(hint)[0], value, where)
    if typing.get_origin(hint) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: must be a list of strings, got {value!r}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: must be {_TYPE_WORDS[hint]}, got {value!r}")


def _tables(cls: type[Any], value: Any, where: str) -> list[Any]:
    """An array of tables (`[[routing.rules]]`), each built and checked like a section."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: must be an array of tables ([[...]])")
    source, _, rest = where.rpartition(": [")  # "hub.toml", "routing] rules"
    section, _, key = rest.partition("] ")
    return [_build_section(cls, f"{section}.{key} #{number}", dict(table), {}, source)
            for number, table in enumerate(value, 1)]


def with_overrides(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `config` with some keys replaced (tests and the CLI use this)."""
    changed = {
        name: _build_section(
            SECTIONS[name],
            name,
            {**_as_dict(getattr(config, name)), **values},
            {},
            config.source,
        )
        for name, values in sections.items()
    }
    return replace(config, **changed)


def _as_dict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in fields(section)}
