"""The ``metropilot`` command."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from metropilot.core.logging import configure_logging
from metropilot.core.permissions import Role, system_principal
from metropilot.core.platform import Platform
from metropilot.core.problems import Problem
from metropilot.core.settings import Settings, get_settings

app = typer.Typer(
    help="metropilot: run a metropolis' public space from one connected control room.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
assets_app = typer.Typer(help="The asset registry.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(assets_app, name="assets")

console = Console()
err = Console(stderr=True)


def _platform(settings: Settings | None = None) -> Platform:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return Platform.from_settings(settings)


def _fail(problem: Problem) -> None:
    err.print(f"[bold red]{problem.title}[/]: {problem.detail or ''}")
    for error in problem.extensions.get("errors", [])[:50]:
        err.print(
            f"  row {error.get('row', '?')} {error.get('field', error.get('pointer', ''))}: {error.get('detail')}"
        )
    raise typer.Exit(code=1)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Default: METROPILOT_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Default: METROPILOT_PORT or 8000")] = None,
    seed: Annotated[bool, typer.Option(help="Seed the simulated metropolis when the registry is empty")] = True,
) -> None:
    """Run the platform on its embedded default: SQLite, in-process bus, simulated metropolis."""
    from metropilot.bootstrap import prepare
    from metropilot.web.app import create_app

    settings = get_settings()
    platform = _platform(settings)
    with console.status("Préparation de la plateforme (base de données, communes, inventaire simulé)…"):
        try:
            report = prepare(platform, seed=seed and settings.seed_on_start)
        except Problem as problem:
            _fail(problem)
            return
    if report.seeded:
        s = report.seeded
        console.print(
            f"Métropole simulée créée : {s.total} équipements, {s.roads} tronçons de voirie "
            f"(échelle {s.scale}, graine {s.seed}) en {s.generate_s + s.import_s:.1f} s."
        )
    bind_host = host or settings.host
    bind_port = port or settings.port
    console.print(f"\n[bold]Salle de contrôle :[/] http://{bind_host}:{bind_port}")
    if report.admin_password:
        console.print(
            f"[bold]Première connexion :[/] utilisateur [cyan]admin[/], mot de passe [cyan]{report.admin_password}[/] "
            "(affiché une seule fois ; définissez METROPILOT_ADMIN_PASSWORD pour le choisir)."
        )
    elif settings.admin_password is not None:
        console.print(
            "[bold]Première connexion :[/] utilisateur [cyan]admin[/], mot de passe de METROPILOT_ADMIN_PASSWORD."
        )
    else:
        console.print("[bold]Connexion :[/] utilisateur [cyan]admin[/] (mot de passe affiché au premier démarrage).")
    uvicorn.run(
        create_app(platform, bootstrap=False),
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def serve(
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (PostgreSQL recommended beyond 1)")] = 1,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the API without seeding (production). Prepares the schema once, then starts the workers."""
    from metropilot.bootstrap import prepare

    settings = get_settings()
    platform = _platform(settings)
    report = prepare(platform, seed=False)
    if report.admin_password:
        console.print(f"First administrator: admin / {report.admin_password} (shown once)")
    platform.close()
    uvicorn.run(
        "metropilot.web.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command("seed")
def seed_command(
    scale: Annotated[float, typer.Option(min=0.001, max=50, help="1.0 = Dijon scale (34,000 light points)")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Random seed (default METROPILOT_SEED)")] = None,
) -> None:
    """Create the simulated metropolis (deterministic for a given seed and scale) in an empty registry."""
    from metropilot.bootstrap import prepare
    from metropilot.simulation.service import seed_metropolis

    settings = get_settings()
    platform = _platform(settings)
    prepare(platform, seed=False)
    try:
        report = seed_metropolis(platform, scale=scale, seed=seed if seed is not None else settings.seed)
    except Problem as problem:
        _fail(problem)
        return
    table = Table(title=f"Simulated metropolis (scale {report.scale}, seed {report.seed})")
    table.add_column("type")
    table.add_column("count", justify="right")
    for key, n in sorted(report.counts.items()):
        table.add_row(key, str(n))
    table.add_row("[bold]total[/]", f"[bold]{report.total}[/]")
    console.print(table)
    console.print(
        f"{report.roads} road segments; generated in {report.generate_s:.1f} s, imported in {report.import_s:.1f} s"
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (creates the database if absent)."""
    platform = _platform()
    platform.db.upgrade()
    console.print(f"Schema up to date on {platform.db.url.render_as_string(hide_password=True)}")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[list[Role], typer.Option("--role", help="Repeat for several roles")],
    commune: Annotated[
        list[str] | None, typer.Option("--commune", help="INSEE code; omit for the whole métropole")
    ] = None,
    full_name: Annotated[str, typer.Option()] = "",
    password: Annotated[str | None, typer.Option(help="Prompted when omitted")] = None,
) -> None:
    """Create an account (roles scoped to communes)."""
    from metropilot.accounts.schemas import UserCreate
    from metropilot.accounts.service import create_user
    from metropilot.bootstrap import prepare

    secret = password or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    platform = _platform()
    prepare(platform, seed=False)
    try:
        body = UserCreate(username=username, password=secret, roles=role, communes=commune or None, full_name=full_name)
        with platform.transaction() as session:
            user = create_user(session, system_principal("cli"), body, platform.clock)
            console.print(f"Created {user.username} ({', '.join(user.roles)}; communes: {user.communes or 'all'})")
    except Problem as problem:
        _fail(problem)
    except ValueError as exc:  # pydantic validation
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from exc


@user_app.command("list")
def user_list() -> None:
    from metropilot.accounts.service import list_users

    platform = _platform()
    with platform.db.read() as session:
        table = Table("username", "roles", "communes", "active")
        for user in list_users(session, system_principal("cli")):
            table.add_row(
                user.username,
                ", ".join(user.roles),
                ", ".join(user.communes or ["(all)"]),
                str(user.is_active),
            )
    console.print(table)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain of the audit log; exit 1 if any entry was altered or removed."""
    from metropilot.core import audit

    platform = _platform()
    with platform.db.read() as session:
        report = audit.verify(session)
    if report.ok:
        console.print(
            f"[green]Audit chain intact[/]: {report.checked} entries, head #{report.head_seq} {report.head_hash}"
        )
        return
    err.print(f"[bold red]Audit chain broken[/] ({report.checked} entries checked):")
    for seq, reason in report.breaks:
        err.print(f"  entry #{seq}: {reason}")
    raise typer.Exit(code=1)


@assets_app.command("import")
def assets_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    dry_run: Annotated[bool, typer.Option(help="Check everything, write nothing")] = False,
) -> None:
    """Import assets from a GeoJSON FeatureCollection or a CSV file: all rows or none."""
    from metropilot.assets import importer
    from metropilot.assets.service import Placement
    from metropilot.bootstrap import prepare
    from metropilot.territory.service import TerritoryIndex

    platform = _platform()
    prepare(platform, seed=False)
    content = path.read_bytes()
    fmt = "csv" if path.suffix.lower() == ".csv" else "geojson"
    placement = Placement(
        platform.need(TerritoryIndex),
        platform.settings.boundary_tolerance_m,
        platform.settings.commune_tolerance_m,
    )
    try:
        parsed = importer.parse_csv(content) if fmt == "csv" else importer.parse_geojson(content)
        with platform.transaction() as session:
            report = importer.import_assets(
                session,
                system_principal("cli"),
                parsed,
                placement,
                platform.clock,
                source=path.name,
                fmt=fmt,
                sha256=hashlib.sha256(content).hexdigest(),
                dry_run=dry_run,
            )
    except Problem as problem:
        _fail(problem)
        return
    verb = "would import" if report.dry_run else "imported"
    console.print(f"{verb} {report.created} assets: {report.by_type} (batch {report.batch_id})")


@assets_app.command("generate")
def assets_generate(
    output: Annotated[Path, typer.Argument(dir_okay=False, help=".geojson or .csv")],
    scale: Annotated[float, typer.Option(min=0.001, max=50)] = 1.0,
    seed: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Write the simulated inventory to a file in the import format, without touching the registry."""
    from metropilot.bootstrap import prepare
    from metropilot.simulation.metropolis import generate, iter_features
    from metropilot.territory.service import TerritoryIndex

    settings = get_settings()
    platform = _platform(settings)
    prepare(platform, seed=False)
    metropolis = generate(platform.need(TerritoryIndex), scale=scale, seed=seed if seed is not None else settings.seed)
    features = list(iter_features(metropolis))
    if output.suffix.lower() == ".csv":
        from metropilot.assets.importer import rows_to_csv

        output.write_text(rows_to_csv(features), encoding="utf-8")
    else:
        output.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))
    console.print(f"Wrote {len(features)} assets to {output}")


def main() -> None:  # pragma: no cover - console entry point alias
    sys.exit(app())
