"""The results commands: `voting tally`, `voting verify`, `voting results ...`,
`voting experts ...`. voting/cli.py adds them (`RESULTS_COMMANDS`, `add_parsers`) when
it builds its parser.

Signing off is not a command: it is a committee member's own act, done signed in on the
committee's results page. `voting results publish` publishes once enough have signed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson

from .. import db, edition_store
from ..clock import SystemClock
from ..contest import Edition, to_local
from ..settings import Settings
from . import expert_review as review
from . import experts as panel
from . import publication as pub
from .exports import results_csv, terminal_tables
from .receipts import normalize_receipt
from .results import compute, shortlists
from .wording import describe_rules


async def _open(settings: Settings, slug: str | None) -> tuple[Any, Edition, int]:
    assert settings.database_url
    conn = await db.connect(settings.database_url)
    await db.migrate(conn)
    edition = await (
        edition_store.get_edition(conn, slug) if slug else edition_store.current_edition(conn)
    )
    if edition is None:
        await conn.close()
        raise LookupError(f"no edition {slug!r}" if slug else "no edition is loaded")
    edition_id = await edition_store.edition_id(conn, edition.slug)
    assert edition_id is not None
    return conn, edition, edition_id


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


async def cmd_tally(args: argparse.Namespace, settings: Settings) -> int:
    """The result tables from the ledger and the panel's scores (the published ones with
    --published)."""
    try:
        conn, edition, edition_id = await _open(settings, args.edition)
    except LookupError as exc:
        return _fail(str(exc))
    try:
        publication = await pub.get_publication(conn, edition_id)
        if args.published:
            if publication is None:
                return _fail("the results of this edition are not published")
            table = publication.results
        else:
            table = (await compute(conn, edition, edition_id)).to_dict()
    finally:
        await conn.close()
    if args.csv:
        sys.stdout.write(results_csv(table))
        return 0
    state = "published" if publication else "not published"
    print(f"{edition.name} ({edition.slug}): results {state}")
    for sentence in describe_rules(table["rules"]):
        print(f"  - {sentence}")
    print()
    print(terminal_tables(table, categories=args.category))
    return 0


async def cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    try:
        conn, edition, edition_id = await _open(settings, args.edition)
    except LookupError as exc:
        return _fail(str(exc))
    try:
        if args.results_cmd == "publish":
            try:
                publication, created = await pub.publish(
                    conn, edition, edition_id, now=SystemClock().now(), actor=f"cli:{args.by}"
                )
            except pub.PublicationRefused as exc:
                return _fail(exc.message, 1)
            verb = "published" if created else "already published"
            print(
                f"{edition.slug}: {verb} on {publication.published_at.isoformat()};"
                f" root {publication.merkle_root} over {publication.leaf_count} votes"
            )
            return 0
        publication = await pub.get_publication(conn, edition_id)
        if args.results_cmd == "status":
            return await _status(conn, edition, edition_id, publication)
        if publication is None:
            return _fail("the results of this edition are not published")
        if args.results_cmd == "export":
            # A command-line tool writing its own output file: nothing else waits on it.
            with open(args.out, "wb") as out:  # noqa: ASYNC230
                async for chunk in pub.export_chunks(conn, publication, edition.slug):
                    out.write(chunk)
            print(f"wrote {publication.leaf_count} leaves to {args.out}")
            return 0
        receipt = normalize_receipt(args.receipt)
        proof = receipt and await pub.inclusion_proof(conn, publication, edition.slug, receipt)
        if not proof:
            return _fail(f"{args.receipt} is not a vote of the published count", 1)
        sys.stdout.write(orjson.dumps(proof, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    finally:
        await conn.close()


async def _status(conn: Any, edition: Edition, edition_id: int, publication: Any) -> int:
    if publication is not None:
        print(
            f"{edition.slug}: published on {publication.published_at.isoformat()} by"
            f" {publication.published_by}, signed by {', '.join(publication.signers)}"
        )
        print(f"root {publication.merkle_root} over {publication.leaf_count} counted votes")
        return 0
    results = await compute(conn, edition, edition_id)
    digest = results.digest()
    signed = await pub.signers(conn, edition_id, digest)
    print(f"{edition.slug}: not published; results phase opens {edition.phase('results').opens_at}")
    print(f"state {digest[:16]}: {len(signed)} of {results.rules.signoffs_required} sign-offs")
    if results.unscored:
        print(f"without an expert score: {', '.join(results.unscored)}")
    return 0


async def cmd_experts(args: argparse.Namespace, settings: Settings) -> int:
    try:
        conn, edition, edition_id = await _open(settings, args.edition)
    except LookupError as exc:
        return _fail(str(exc))
    try:
        if args.experts_cmd in ("assign", "unassign"):
            change = panel.assign if args.experts_cmd == "assign" else panel.unassign
            try:
                changed = await change(
                    conn,
                    edition,
                    edition_id,
                    args.email.strip().lower(),
                    args.categories,
                    actor=f"cli:{args.by}",
                )
            except panel.ExpertError as exc:
                return _fail(exc.message)
            print(f"{args.email}: {args.experts_cmd}ed {', '.join(changed) or 'nothing new'}")
            return 0
        if args.experts_cmd == "extend":
            return await _extend_review(args, conn, edition, edition_id)
        if args.experts_cmd == "replace":
            try:
                changed = await review.replace_expert(
                    conn,
                    edition,
                    edition_id,
                    args.expert.strip().lower(),
                    args.replacement.strip().lower(),
                    args.categories,
                    actor=f"cli:{args.by}",
                    reason=args.reason,
                )
            except (review.ReviewChangeRefused, panel.ExpertError) as exc:
                return _fail(exc.message)
            print(f"{args.replacement} replaces {args.expert} in {', '.join(changed)}")
            return 0
        closed = SystemClock().now() >= edition.phase("voting").closes_at
        short = await shortlists(conn, edition, edition_id) if closed else {}
        reviews, _ = await panel.reviews(conn, edition_id)
        report = panel.progress(
            await panel.experts(conn, edition_id),
            short,
            reviews,
            await panel.conflicts(conn, edition_id),
            edition.rules.results,
        )
        for p in report:
            state = "finished" if closed and p.finished and p.expert.categories else "not finished"
            print(
                f"{p.expert.email:32} {','.join(p.expert.categories) or '-':24}"
                f" {p.done}/{p.required} reviewed, {p.recused} recused, {state}"
            )
        # The same warnings as the organizers' page (tally/expert_review.py).
        covered, _ = await review.coverage_now(conn, edition, edition_id, SystemClock().now())
        for c in covered:
            if c.state == review.NO_EXPERT:
                print(f"warning: {c.code}: no expert assigned, {len(c.to_score)} to score")
            elif c.state == review.ALL_RECUSED:
                print(f"warning: {c.code}: every expert recused from {', '.join(c.nobody_left)}")
            elif c.state == review.UNSCORED:
                print(f"warning: {c.code}: no complete score yet for {', '.join(c.unscored)}")
        return 0
    finally:
        await conn.close()


async def _extend_review(
    args: argparse.Namespace, conn: Any, edition: Edition, edition_id: int
) -> int:
    """`voting experts extend`: the same function as the organizers' page."""
    from datetime import datetime

    from ..contest import EditionFileError, local_to_utc

    try:
        local = datetime.strptime(args.to, "%Y-%m-%d %H:%M")
        new_close = local_to_utc(local, edition.tz)
    except (ValueError, EditionFileError) as exc:
        return _fail(f"--to: {exc}")
    try:
        old, new = await review.extend_review(
            conn,
            edition,
            edition_id,
            new_close,
            now=SystemClock().now(),
            actor=f"cli:{args.by}",
            reason=args.reason,
        )
    except review.ReviewChangeRefused as exc:
        return _fail(exc.message)
    print(
        f"the expert review of {edition.slug!r} now closes"
        f" {to_local(new, edition.tz):%Y-%m-%d %H:%M %Z}"
        f" (was {to_local(old, edition.tz):%Y-%m-%d %H:%M %Z})"
    )
    return 0


RESULTS_COMMANDS = {"tally": cmd_tally, "results": cmd_results, "experts": cmd_experts}


def verify_offline(args: argparse.Namespace) -> int:
    """`voting verify`: no database, no settings, just the file (voting/tally/verify.py)."""
    from .verify import main

    return main([args.file, *(["--root", args.root] if args.root else [])])


def add_parsers(sub: Any) -> None:
    who = os.environ.get("USER", "operator")
    tally = sub.add_parser("tally", help="print the result tables (official votes, experts, rank)")
    tally.add_argument("--edition", help="edition slug (default: the current one)")
    tally.add_argument("--category", action="append", help="only this category (repeatable)")
    tally.add_argument("--csv", action="store_true", help="the full table as CSV instead")
    tally.add_argument("--published", action="store_true", help="the published results")

    verify = sub.add_parser("verify", help="check a ledger export or an inclusion proof, offline")
    verify.add_argument("file", help="the JSON file to check")
    verify.add_argument("--root", help="the fingerprint published on the results page")

    results = sub.add_parser("results", help="publish results, their status, export, proofs")
    rs = results.add_subparsers(dest="results_cmd", required=True)
    publish = rs.add_parser("publish", help="publish once the committee has signed off")
    publish.add_argument("--by", default=who, help="who publishes (recorded)")
    rs.add_parser("status", help="sign-offs, publication, what is missing")
    export = rs.add_parser("export", help="write the published ledger export (JSON)")
    export.add_argument("--out", required=True, help="the file to write")
    proof = rs.add_parser("proof", help="print a receipt's inclusion proof (JSON)")
    proof.add_argument("receipt")
    for p in (publish, export, proof, rs.choices["status"]):
        p.add_argument("--edition", help="edition slug (default: the current one)")

    experts = sub.add_parser("experts", help="assign experts to categories, see who finished")
    ex = experts.add_subparsers(dest="experts_cmd", required=True)
    for name, text in (("assign", "assign an expert"), ("unassign", "remove an assignment")):
        p = ex.add_parser(name, help=f"{text} (the user needs the expert role)")
        p.add_argument("email")
        p.add_argument("categories", nargs="+", metavar="CATEGORY")
        p.add_argument("--by", default=who, help="who decided it (recorded)")
        p.add_argument("--edition", help="edition slug (default: the current one)")
    listing = ex.add_parser("list", help="every expert, their categories and progress")
    listing.add_argument("--edition", help="edition slug (default: the current one)")
    extend = ex.add_parser("extend", help="move the expert review's close later, on the record")
    extend.add_argument("--to", required=True, help='new close, Geneva time: "YYYY-MM-DD HH:MM"')
    extend.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    extend.add_argument("--by", default=who, help="who decided it (recorded)")
    extend.add_argument("--edition", help="edition slug (default: the current one)")
    replace = ex.add_parser("replace", help="put a replacement expert in another's place")
    replace.add_argument("expert", help="the expert replaced")
    replace.add_argument("replacement", help="the replacement (a user with the expert role)")
    replace.add_argument(
        "categories", nargs="*", metavar="CATEGORY", help="only these (default: all of theirs)"
    )
    replace.add_argument("--reason", required=True, help="why (recorded in the audit log)")
    replace.add_argument("--by", default=who, help="who decided it (recorded)")
    replace.add_argument("--edition", help="edition slug (default: the current one)")
