"""Results over HTTP: the committee's pages, sign-off and publication, exports, the public
results page and API, and the receipt check.

Thin: counting, merging and publishing live in voting/tally/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import edition_store
from ..audit_wording import action_words
from ..contest import Edition
from ..i18n import gettext
from ..tally import publication as pub
from ..tally.exports import fraud_summary, results_csv
from ..tally.official import bucket_for, votes_over_time
from ..tally.receipts import normalize_receipt, receipt_status
from ..tally.results import compute, public_view
from ..tally.wording import describe_rules
from .auth import pages, require_role
from .chart_data import merged_ranking_chart
from .charts import OTHERS_KEY, Series, others_of, summarise_series, timeline_chart
from .csrf import check_csrf
from .deps import current_edition, services
from .responses import JSON, ApiError
from .shapes import NO_NUL, Answer, AnyObject, Operation, Receipt, decode_query
from .templating import _geneva, language_of


async def _edition(request: Request) -> tuple[Edition, int]:
    given = decode_query(request.query_params, EditionQuery).edition
    slug = given if isinstance(given, str) else ""
    async with services(request).db.acquire() as conn:
        if slug:
            edition = await edition_store.get_edition(conn, slug)
            if edition is None:
                raise ApiError(
                    404,
                    "no_such_edition",
                    gettext("There is no edition {slug}.", language_of(request)).format(slug=slug),
                )
        else:
            edition = None
    edition = edition or await current_edition(request)
    async with services(request).db.acquire() as conn:
        edition_id = await edition_store.edition_id(conn, edition.slug)
    assert edition_id is not None
    return edition, edition_id


# -- the committee --------------------------------------------------------------------------


async def _committee_page(
    request: Request, *, done: str = "", message: str = "", status: int = 200
) -> Response:
    user = await require_role(request, "committee")
    edition, edition_id = await _edition(request)
    now = services(request).clock.now()
    async with services(request).db.acquire() as conn:
        publication = await pub.get_publication(conn, edition_id)
        results = await compute(conn, edition, edition_id)
        digest = results.digest()
        signed = await pub.signers(conn, edition_id, digest)
    lang = language_of(request)
    required = results.rules.signoffs_required
    results_open = now >= edition.phase("results").opens_at
    return pages(request).render(
        request,
        "results/committee.html",
        {
            "edition": edition,
            "now": now,
            "results": results.to_dict(),
            "titles": {n.public_id: n.title for n in results.nominations.values()},
            "rule_text": describe_rules(results.rules.to_dict(), lang),
            "digest": digest,
            "signed": signed,
            "user_signed": user.email in signed,
            "required": required,
            "publication": publication,
            "voting_closed": now >= edition.phase("voting").closes_at,
            "results_open": results_open,
            # This member's signature would make the results public: they sign on the
            # preview of the public page, as a step of its own.
            "last_signer": results_open
            and user.email not in signed
            and len(signed) + 1 >= required,
            "done": done,
            "message": message,
        },
        status=status,
    )


async def committee_results(request: Request) -> Response:
    return await _committee_page(request)


async def committee_signoff(request: Request) -> Response:
    user = await require_role(request, "committee")
    form = await request.form()
    token, digest = form.get("csrf_token"), form.get("digest")
    check_csrf(request, token if isinstance(token, str) else "")
    # Only the preview's form says "publish": a signature given anywhere else never
    # makes the results public by itself.
    publish_now = form.get("publish") == "yes"
    edition, edition_id = await _edition(request)
    svc = services(request)
    lang = language_of(request)
    try:
        async with svc.db.acquire() as conn:
            done = await pub.sign_off_and_publish(
                conn,
                edition,
                edition_id,
                user_id=user.id,
                email=user.email,
                digest=digest if isinstance(digest, str) else "",
                clock=svc.clock,
                publish_now=publish_now,
            )
    except pub.PublicationRefused as exc:
        return await _committee_page(request, message=exc.text(lang), status=exc.status)
    said = gettext("Your sign-off is recorded.", lang)
    if done.publication is not None:
        said += " " + gettext("The results are published.", lang)
    return await _committee_page(request, done=said)


async def committee_publish(request: Request) -> Response:
    user = await require_role(request, "committee")
    form = await request.form()
    token, digest = form.get("csrf_token"), form.get("digest")
    check_csrf(request, token if isinstance(token, str) else "")
    edition, edition_id = await _edition(request)
    svc = services(request)
    try:
        async with svc.db.acquire() as conn:
            _, created = await pub.publish(
                conn,
                edition,
                edition_id,
                now=svc.clock.now(),
                actor=f"user:{user.email}",
                digest=digest if isinstance(digest, str) and digest else None,
            )
    except pub.PublicationRefused as exc:
        return await _committee_page(
            request, message=exc.text(language_of(request)), status=exc.status
        )
    return await _committee_page(
        request,
        done=(
            gettext("The results are published.", language_of(request))
            if created
            else gettext("The results were already published.", language_of(request))
        ),
    )


async def committee_category(request: Request) -> Response:
    await require_role(request, "committee")
    edition, edition_id = await _edition(request)
    code = request.path_params["code"]
    category = edition.category(code)
    if category is None:
        raise ApiError(
            404,
            "no_such_category",
            gettext("There is no category {code}.", language_of(request)).format(code=code),
        )
    voting = edition.phase("voting")
    async with services(request).db.acquire() as conn:
        results = await compute(conn, edition, edition_id, with_fingerprint=False)
        table = next(c for c in results.to_dict()["categories"] if c["code"] == code)
        charted = [e["nomination"] for e in table["entries"]]
        series = await votes_over_time(
            conn,
            edition_id,
            charted,
            origin=voting.opens_at,
            bucket=bucket_for(voting.closes_at - voting.opens_at),
        )
        assigned = await conn.fetch(
            "SELECT u.email FROM expert_assignments a JOIN users u ON u.id=a.user_id"
            " WHERE a.edition_id=$1 AND a.category=$2 ORDER BY u.email",
            edition_id,
            code,
        )
    experts = sorted(
        {r["email"] for r in assigned}
        | {name for e in table["entries"] for name in e["experts"]}
        | {name for e in table["entries"] for name in e["recused"]}
    )
    titles = {e["nomination"]: e["title"] for e in table["entries"]}
    lang = language_of(request)
    # The shared chart: titles in the legend, the few busiest by name and the rest as
    # "N other nominations", numbers and times as the page's language writes them.
    lines = [
        Series(nomination, titles.get(nomination, nomination), tuple((b, c) for b, c, _ in pts))
        for nomination, pts in series.items()
    ]
    # The chart's own rule (timeline_chart): series with votes, the busiest by name.
    named = [
        s.key
        for s in summarise_series([s for s in lines if s.total], lambda n: "")
        if s.key != OTHERS_KEY
    ]
    chart = timeline_chart(
        lines,
        start=voting.opens_at,
        end=voting.closes_at,
        title=gettext("Votes cast over time", lang),
        description=gettext(
            "Running total of the votes cast for each nomination during the public vote,"
            " whatever their verdict. The table below gives the same figures.",
            lang,
        ),
        value_label=gettext("Votes (running total)", lang),
        others=others_of("{n} other nomination", "{n} other nominations", lang),
        tz=edition.tz,
        lang=lang,
    )
    criteria_scores = {
        (r.expert, r.nomination): {k: str(v) for k, v in r.scores.items()} for r in results.reviews
    }
    return pages(request).render(
        request,
        "results/committee_category.html",
        {
            "edition": edition,
            "category": category,
            "table": table,
            "experts": experts,
            "rules": results.rules,
            "rule_text": describe_rules(results.rules.to_dict(), language_of(request)),
            "chart": chart,
            "ranking_chart": merged_ranking_chart(table, results.rules.merge_rule == "blend"),
            # The cast/kept table beside the chart: the nominations the chart names (the
            # busiest), by the chart's own rule, not one row per bucket for every
            # nomination of a large category.
            "series": {key: series[key] for key in named},
            "titles": titles,
            "criteria_scores": criteria_scores,
        },
    )


async def _table_for_export(request: Request) -> tuple[Edition, int, dict[str, Any], Any]:
    """The published results when there are, else the results as they stand (a draft)."""
    await require_role(request, "committee")
    edition, edition_id = await _edition(request)
    async with services(request).db.acquire() as conn:
        publication = await pub.get_publication(conn, edition_id)
        if publication is not None:
            return edition, edition_id, publication.results, publication
        results = await compute(conn, edition, edition_id)
    return edition, edition_id, results.to_dict(), None


async def committee_csv(request: Request) -> Response:
    edition, _, table, publication = await _table_for_export(request)
    name = f"{edition.slug}-results{'' if publication else '-draft'}.csv"
    return Response(
        results_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


async def committee_report(request: Request) -> Response:
    edition, edition_id, table, publication = await _table_for_export(request)
    async with services(request).db.acquire() as conn:
        fraud = await fraud_summary(conn, edition_id, edition.slug)
    for decision in fraud["decisions"]:
        decision["words"] = action_words(decision["action"], language_of(request))
    signed = list(publication.signers) if publication else []
    return pages(request).render(
        request,
        "results/report.html",
        {
            "edition": edition,
            "table": table,
            "publication": publication,
            "rule_text": describe_rules(table["rules"], language_of(request)),
            "fraud": fraud,
            "signed": signed,
            "now": services(request).clock.now(),
        },
    )


async def committee_preview(request: Request) -> Response:
    """The public results page exactly as publishing now would make it, with the step
    that publishes it: "sign and publish" for the member whose signature completes the
    sign-offs, "publish" once they are all given, "sign" for an earlier member."""
    user = await require_role(request, "committee")
    edition, edition_id = await _edition(request)
    now = services(request).clock.now()
    async with services(request).db.acquire() as conn:
        publication = await pub.get_publication(conn, edition_id)
        if publication is not None:
            return RedirectResponse("/results", status_code=303)
        results = await compute(conn, edition, edition_id)
        digest = results.digest()
        signed = await pub.signers(conn, edition_id, digest)
    required = results.rules.signoffs_required
    would_sign = user.email not in signed
    signers = [*signed, user.email] if would_sign else signed
    preview = pub.preview(results, signers, f"user:{user.email}", now)
    if now < edition.phase("voting").closes_at:
        step = "voting_open"
    elif results.unscored:
        step = "unscored"
    elif len(signers) < required:
        # An earlier member signs here; one who has signed waits for the others.
        step = "sign" if would_sign else "waiting"
    elif now < edition.phase("results").opens_at:
        step = "sign" if would_sign else "too_early"
    else:
        step = "sign_and_publish" if would_sign else "publish"
    return pages(request).render(
        request,
        "results/preview.html",
        {
            "edition": edition,
            "body": _results_body(request, edition, preview),
            "publication": preview,
            "digest": digest,
            "step": step,
            "signed": signed,
            "required": required,
            "results_opens": edition.phase("results").opens_at,
        },
    )


# -- the public -----------------------------------------------------------------------------


async def _published(request: Request) -> tuple[Edition, int, pub.Publication]:
    edition, edition_id = await _edition(request)
    async with services(request).db.acquire() as conn:
        publication = await pub.get_publication(conn, edition_id)
    if publication is None:
        opens = edition.phase("results").opens_at
        raise ApiError(
            404,
            "not_published",
            gettext(
                "The results are not published yet. They are published after the prize"
                " committee signs them off, not before {when}.",
                language_of(request),
            ).format(when=_geneva(opens)),
        )
    return edition, edition_id, publication


def _results_body(request: Request, edition: Edition, publication: pub.Publication) -> dict:
    view = public_view(publication.results)
    return {
        "edition": edition.slug,
        "name": edition.name,
        "published_at": publication.published_at,
        "signoffs": len(publication.signers),
        "rules": publication.rules,
        "rule_text": describe_rules(publication.rules, language_of(request)),
        "fingerprint": {
            "merkle_root": publication.merkle_root,
            "leaf_count": publication.leaf_count,
            "export": f"/api/results/ledger?edition={edition.slug}",
        },
        "categories": view["categories"],
    }


async def public_results(request: Request) -> Response:
    edition, edition_id = await _edition(request)
    async with services(request).db.acquire() as conn:
        published = await pub.get_publication(conn, edition_id)
    if published is None:
        # Not published yet is an expected state, not an error: the page says when.
        return pages(request).render(
            request,
            "results/pending.html",
            {
                "edition": edition,
                "voting": edition.phase("voting"),
                "results_phase": edition.phase("results"),
                "now": services(request).clock.now(),
            },
        )
    edition, _, publication = await _published(request)
    body = _results_body(request, edition, publication)
    return pages(request).render(
        request,
        "results/public.html",
        {"edition": edition, "body": body, "publication": publication},
    )


async def results_api(request: Request) -> JSON:
    edition, _, publication = await _published(request)
    return JSON(_results_body(request, edition, publication))


async def ledger_export_api(request: Request) -> Response:
    edition, _, publication = await _published(request)
    pool = services(request).db

    async def stream() -> AsyncIterator[bytes]:
        async with pool.acquire() as conn:
            async for chunk in pub.export_chunks(conn, publication, edition.slug):
                yield chunk

    return StreamingResponse(
        stream(),
        media_type="application/json",
        headers={
            "content-disposition": f'attachment; filename="{edition.slug}-ledger-export.json"'
        },
    )


async def _receipt(request: Request, raw: str) -> dict[str, Any]:
    receipt = normalize_receipt(raw)
    lang = language_of(request)
    if receipt is None:
        raise ApiError(
            422,
            "invalid_receipt",
            gettext(
                "A receipt is 16 letters and digits in four groups, like ABCD-EFGH-2345-WXYZ.",
                lang,
            ),
            fields={"code": "not a receipt"},
        )
    edition, edition_id = await _edition(request)
    svc = services(request)
    async with svc.db.acquire() as conn:
        found = await receipt_status(conn, edition, edition_id, receipt, svc.clock.now())
        if found is None:
            raise ApiError(
                404,
                "unknown_receipt",
                gettext(
                    "No vote in the ledger has this receipt. A vote cast in the last few"
                    " seconds may not be there yet: try again in a minute.",
                    lang,
                ),
            )
        publication = await pub.get_publication(conn, edition_id)
        proof = (
            await pub.inclusion_proof(conn, publication, edition.slug, receipt)
            if publication
            else None
        )
    found["message"] = gettext(found["message"], lang)
    found["published"] = publication is not None
    found["in_published_tally"] = proof is not None if publication else None
    found["proof"] = proof
    return found


async def receipt_api(request: Request) -> JSON:
    return JSON(await _receipt(request, request.path_params["code"]))


async def receipt_page(request: Request) -> Response:
    raw = request.query_params.get("code", "").strip()
    found: dict[str, Any] | None = None
    error = ""
    status = 200
    if raw:
        try:
            found = await _receipt(request, raw)
        except ApiError as exc:
            error, status = exc.message, exc.status
    proof_json = (
        orjson.dumps(found["proof"], option=orjson.OPT_INDENT_2).decode()
        if found and found["proof"]
        else ""
    )
    return pages(request).render(
        request,
        "results/receipt.html",
        {"code": raw, "found": found, "error": error, "proof_json": proof_json},
        status=status,
    )


routes = [
    Route("/committee/results", committee_results, methods=["GET"]),
    Route("/committee/results.csv", committee_csv, methods=["GET"]),
    Route("/committee/results/report", committee_report, methods=["GET"]),
    Route("/committee/results/signoff", committee_signoff, methods=["POST"]),
    Route("/committee/results/publish", committee_publish, methods=["POST"]),
    Route("/committee/results/preview", committee_preview, methods=["GET"]),
    Route("/committee/results/{code}", committee_category, methods=["GET"]),
    Route("/results", public_results, methods=["GET"]),
    Route("/receipts", receipt_page, methods=["GET"]),
    Route("/api/results", results_api, methods=["GET"]),
    Route("/api/results/ledger", ledger_export_api, methods=["GET"]),
    Route("/api/receipts/{code}", receipt_api, methods=["GET"]),
]

EDITION = "An edition slug (default: the current edition)"


class EditionQuery(Struct):
    edition: Annotated[str, Meta(pattern=NO_NUL, description=EDITION)] | UnsetType = UNSET


class ReceiptPath(Struct):
    code: Receipt


NOT_PUBLISHED = "Not published yet, or no such edition"
API = [
    Operation(
        "GET",
        "/api/results",
        "The published results: winners, shortlists, the rule, the fingerprint",
        {200: Answer("The published results", AnyObject), 404: NOT_PUBLISHED},
        query=EditionQuery,
    ),
    Operation(
        "GET",
        "/api/results/ledger",
        "The ledger export of the publication: every counted vote's leaf"
        " (receipt digest, category, nomination), the counts and the Merkle root;"
        " check it with `voting verify`",
        {200: Answer("The export", AnyObject), 404: NOT_PUBLISHED},
        query=EditionQuery,
    ),
    Operation(
        "GET",
        "/api/receipts/{code}",
        "What happened to the vote with this receipt: counted, held, voided;"
        " after publication, its inclusion proof",
        {
            200: Answer("The vote's state", AnyObject),
            404: "No vote has this receipt, or no such edition",
            422: "Not a receipt",
        },
        path_params=ReceiptPath,
        query=EditionQuery,
    ),
]
