"""``optivgi-sim``: run a whole site of simulated OCPP 1.6 and 2.0.1 charging stations against a CSMS.

    optivgi-sim --url ws://127.0.0.1:9000/ocpp --scenario scenarios/workplace-54.json --time-scale 300
    optivgi-sim --url ws://127.0.0.1:9000/ocpp --chargers 20 --arrivals turnover --share-201 0.3 --duration 120

Stations connect to ``URL/<station id>``. A scenario file (``scenarios/FORMAT.md``, with the
simulator's extras described in ``simulators/README.md``) or the generator options describe the site.
At the end ``report.json`` and ``report.png`` are written into ``--report-dir``.

Exit status: 0 when the run finished, 1 when no station could ever connect, 2 for bad arguments or a
bad scenario (one line naming what is wrong), 130 when interrupted (the report is still written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from optivgi_csms.logs import StderrHandler
from simulators.scenario import ISO15118_MODES, OCPP_VERSIONS, ScenarioError, SimScenario, load_scenario

PROG = "optivgi-sim"
DEFAULT_URL = "ws://127.0.0.1:9000/ocpp"
#: Wall seconds the connected site settles before the scenario clock starts (the CSMS sets the stations up).
DEFAULT_SETTLE_S = 5.0


class UsageError(Exception):
    """A bad argument or scenario: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block: the message names the option, --help has the rest.
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text!r}")
    return value


def _versions(text: str) -> tuple[str, ...]:
    versions = tuple(v.strip() for v in text.split(",") if v.strip())
    wrong = [v for v in versions if v not in OCPP_VERSIONS]
    if not versions or wrong:
        raise argparse.ArgumentTypeError(f"a comma-separated list of {' and '.join(OCPP_VERSIONS)}, got {text!r}")
    return versions


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    from simulators.generator import PATTERNS

    parser = _Parser(
        prog=PROG,
        description="Run a site of simulated OCPP 1.6J and 2.0.1 charging stations, with EVs, against a CSMS.",
        epilog="Stations connect to URL/<station id>. Without --scenario a site is generated (--chargers etc.).",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"CSMS base URL (default {DEFAULT_URL})")
    parser.add_argument("--scenario", metavar="FILE", help="site scenario file (scenarios/FORMAT.md)")
    run = parser.add_argument_group("run")
    run.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="X",
        help="scenario time runs X times faster than the wall clock (OCPP messages keep real time; default 1)",
    )
    run.add_argument("--duration", type=_positive, metavar="SECONDS", help="stop after this much wall time")
    run.add_argument("--report-dir", default="sim-report", metavar="DIR", help="where report.json/.png go")
    run.add_argument("--password", help="Basic-auth password of stations the scenario gives none (profile 1)")
    run.add_argument(
        "--meter-interval",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="MeterValueSampleInterval the stations start with, wall seconds (the CSMS may change it; default 10)",
    )
    run.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="hold the scenario clock at most this long for stations to connect (default 10)",
    )
    run.add_argument(
        "--settle-s",
        type=_non_negative,
        default=DEFAULT_SETTLE_S,
        metavar="SECONDS",
        help="wall seconds between all stations connected and the scenario clock starting, so the CSMS sets "
        f"them up before the first EV (default {DEFAULT_SETTLE_S:g})",
    )
    run.add_argument(
        "--fixed-capabilities",
        action="store_true",
        help="smart-charging capabilities read-only, as on real stations (default: the CSMS may change them)",
    )
    run.add_argument(
        "--iso15118",
        choices=ISO15118_MODES,
        default="scenario",
        help="which EVs speak ISO 15118, so that on a 2.0.1 station they tell the CSMS their departure and energy "
        '(NotifyEVChargingNeeds): those with "iso15118": true in the scenario (default), all, or none',
    )
    run.add_argument("--quiet", action="store_true", help="no live display and no summary")
    run.add_argument("--verbose", action="store_true", help="log the stations' events (connections, boots, refusals)")
    mix = parser.add_argument_group("protocol mix (for stations whose version the scenario does not give)")
    mix.add_argument("--versions", type=_versions, metavar="LIST", help="1.6, 2.0.1 or 1.6,2.0.1 (default both)")
    mix.add_argument("--share-201", type=_share, metavar="F", help="share of stations speaking 2.0.1 (default 0.5)")
    gen = parser.add_argument_group("generated site (without --scenario)")
    gen.add_argument("--chargers", type=_count, metavar="N", help="number of charging stations (default 10)")
    gen.add_argument("--evses-per-charger", type=_count, metavar="N", help="EVSEs per station (default 1)")
    gen.add_argument("--arrivals", choices=PATTERNS, help="arrival pattern (default workplace)")
    gen.add_argument("--hours", type=_positive, metavar="H", help="length of the scenario (default 8)")
    gen.add_argument("--limit-kw", type=_positive, metavar="KW", help="site limit (default 5.5 kW per EVSE)")
    gen.add_argument("--seed", type=int, help="random seed (default 1)")
    return parser


def share_201(versions: tuple[str, ...] | None, share: float | None) -> float:
    """The share of 2.0.1 stations from ``--versions`` and ``--share-201`` (both optional)."""
    if versions is None:
        return 0.5 if share is None else share
    if set(versions) == set(OCPP_VERSIONS):
        return 0.5 if share is None else share
    only = 1.0 if versions == ("2.0.1",) else 0.0
    if share is not None and share != only:
        raise UsageError(f"--share-201 {share:g} contradicts --versions {versions[0]}")
    return only


def _scenario(args: argparse.Namespace) -> SimScenario:
    from simulators.generator import GeneratorOptions, generate_scenario

    generator = {
        "chargers": args.chargers,
        "evses_per_charger": args.evses_per_charger,
        "pattern": args.arrivals,
        "hours": args.hours,
        "limit_kw": args.limit_kw,
        "seed": args.seed,
    }
    given = {name: value for name, value in generator.items() if value is not None}
    if args.scenario is not None:
        if given:
            flags = ", ".join("--" + {"pattern": "arrivals"}.get(n, n).replace("_", "-") for n in given)
            raise UsageError(f"{flags}: generator options go without --scenario")
        try:
            return load_scenario(args.scenario)
        except ScenarioError as error:
            raise UsageError(str(error)) from None
    return generate_scenario(GeneratorOptions(**given))


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise UsageError(f"--url: expected ws://HOST[:PORT][/PATH] or wss://..., got {url!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UsageError(f"--url: bad port in {url!r}") from None


def _report_dir(path: str) -> Path:
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--report-dir: cannot create {path!r}: {error.strerror or error}") from None
    if not directory.is_dir():
        raise UsageError(f"--report-dir: {path!r} is not a directory")
    return directory


def _logging(verbose: bool, console: object | None) -> None:
    level = logging.INFO if verbose else logging.WARNING
    if console is not None:
        from rich.logging import RichHandler

        # Through the live display's console, so log lines scroll above the panel instead of tearing it.
        handler: logging.Handler = RichHandler(console=console, show_path=False)  # type: ignore[arg-type]
    else:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


async def _run(scenario: SimScenario, args: argparse.Namespace, share: float, report_dir: Path) -> int:
    from rich.console import Console

    from simulators.progress import LiveProgress
    from simulators.report import summary_lines, write_report
    from simulators.site import SiteOptions, SiteRun

    options = SiteOptions(
        url=args.url,
        time_scale=args.time_scale,
        duration_s=args.duration,
        share_201=share,
        password=args.password,
        meter_interval_s=args.meter_interval,
        connect_timeout_s=args.connect_timeout,
        settle_s=args.settle_s,
        limits_writable=not args.fixed_capabilities,
        iso15118=args.iso15118,
    )
    try:
        site = SiteRun(scenario, options)
    except ValueError as error:  # a station description the station itself refuses
        raise UsageError(str(error)) from None
    console = Console(stderr=True)
    live = not args.quiet and console.is_terminal
    _logging(args.verbose, console if live else None)

    task = asyncio.create_task(site.run())
    interrupts = 0

    def interrupted() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            site.stop()  # unplug the EVs, close the sessions, write the report
        else:
            task.cancel()  # a second Ctrl-C: give up on a clean end

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not possible on every platform or outside the main thread: then Ctrl-C simply ends the run.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, interrupted)
    if live:
        await LiveProgress(site, console).follow(task)
    info = await task
    report = write_report(site.recorder, info, report_dir)
    if not args.quiet:
        for line in summary_lines(report):
            print(line)
        print(f"report: {report_dir / 'report.json'}, chart: {report_dir / 'report.png'}")
    if info.stopped == "interrupted":
        return 130
    if not info.connected:
        print(f"{PROG}: no station could connect to {args.url}: is the CSMS running there?", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_url(args.url)
        share = share_201(args.versions, args.share_201)
        scenario = _scenario(args)
        report_dir = _report_dir(args.report_dir)
    except UsageError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(scenario, args, share, report_dir))
    except UsageError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
