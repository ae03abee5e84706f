"""Report routes of issue 19 (RPT-1…4, RPT-6): `GET /api/v1/reports/{report}` as JSON and
`GET /api/v1/reports/{report}.csv` — the same table, so the file holds the chart's numbers.
Reporting's ReportingService validates the parameters (400 naming each), the permission
`see_reports` and the viewer's inboxes (404 for one they may not see). Documented in
openapi.yaml."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import reporting_pb2, reporting_pb2_grpc

from services.reporting import report_csv

from .request import deps, metadata, whole_number
from .responses import json_response, page_response

PERIOD = ("period", "start", "end")
SATISFACTION_KEYS = ("dimension", "id", "name")  # which row of the satisfaction table
REPORT = r"{report:[A-Za-z0-9_]+}"  # never rlive's /reports/live-queue, live-assignment


def _value(v: reporting_pb2.ReportValue) -> Any:
    kind = v.WhichOneof("kind")
    return None if kind is None else getattr(v, kind)


def _objects(t: reporting_pb2.ReportTable) -> list[dict[str, Any]]:
    return [dict(zip(t.columns, (_value(v) for v in r.values), strict=True)) for r in t.rows]


def _by_dimension(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"labels": {}, "categories": {}}
    for r in rows:
        out["labels" if r["dimension"] == "label" else "categories"][r["topic"]] = r[key]
    return out


def report_json(r: reporting_pb2.Report) -> dict[str, Any]:
    tables = {t.name: t for t in r.tables}
    table = tables["table"]
    rows = _objects(table)
    body: dict[str, Any] = {
        "report": r.report,
        "from": getattr(r, "from"),
        "to": r.to,
        "granularity": r.granularity,
        "tz": r.time_zone,
        "basis": r.basis,
        "inbox_id": r.inbox_id or None,
        "inboxes": [{"id": i.id, "name": i.name} for i in r.inboxes],
        "source": r.source,
    }
    if r.report == "topics":
        series: dict[str, dict[str, Any]] = {}
        for s in _objects(tables["series"]):
            point = series.setdefault(
                s["period"],
                {
                    "period": s["period"],
                    "start": s["start"],
                    "end": s["end"],
                    "labels": {},
                    "categories": {},
                },
            )
            if s["dimension"]:  # "": a period with nothing counted
                kind = "labels" if s["dimension"] == "label" else "categories"
                point[kind][s["topic"]] = s["count"]
        body["series"] = list(series.values())
        body["totals"] = _by_dimension([x for x in rows if x["period"] == "total"], "count")
        top = _objects(tables["top"])
        body["top"] = {
            "labels": [
                {k: t[k] for k in ("topic", "count", "share")}
                for t in top
                if t["dimension"] == "label"
            ],
            "categories": [
                {k: t[k] for k in ("topic", "count", "share")}
                for t in top
                if t["dimension"] == "category"
            ],
        }
    else:
        body["series"] = _objects(tables["series"])
        skip = {"operator_id", "operator"} if r.report == "operators" else set(PERIOD)
        if r.report == "satisfaction":  # per period, operator, inbox: the totals row last
            skip |= set(SATISFACTION_KEYS)
            for dim, key in (("operator", "per_operator"), ("inbox", "per_inbox")):
                body[key] = [
                    {f"{dim}_id": x["id"], dim: x["name"]}
                    | {k: v for k, v in x.items() if k not in skip}
                    for x in rows
                    if x["dimension"] == dim
                ]
        body["totals"] = {k: v for k, v in rows[-1].items() if k not in skip} if rows else {}
        if "questions" in tables:
            body["per_question"] = _per_question(_objects(tables["questions"]))
    if "thresholds" in tables:
        body["thresholds"] = _objects(tables["thresholds"])
    body["table"] = {
        "columns": list(table.columns),
        "rows": [[_value(v) for v in row.values] for row in table.rows],
    }
    return body


def _per_question(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The satisfaction report's additional questions: each with its total and series."""
    out: dict[str, dict[str, Any]] = {}
    measures = ("answered", "average_rating", *(f"rating_{k}" for k in range(1, 6)))
    for r in rows:
        q = out.setdefault(
            r["question_id"],
            {k: r[k] for k in ("question_id", "question_ja", "question_en")} | {"series": []},
        )
        values = {k: r[k] for k in measures}
        if r["period"] == "total":
            q.update(values)
        else:
            q["series"].append({k: r[k] for k in PERIOD} | values)
    return list(out.values())


def _request(request: web.Request) -> reporting_pb2.GetReportRequest:
    q = request.query
    top = q.get("top", "")
    out = reporting_pb2.GetReportRequest(
        report=request.match_info["report"],
        to=q.get("to", ""),
        granularity=q.get("granularity", ""),
        time_zone=q.get("tz", ""),
        inbox_id=q.get("inbox_id", ""),
        basis=q.get("basis", ""),
        top=whole_number(top, "top", 1, 50) if top else 0,
    )
    setattr(out, "from", q.get("from", ""))  # a keyword in Python
    return out


async def _report(request: web.Request, *, csv: bool = False) -> reporting_pb2.Report:
    stub = reporting_pb2_grpc.ReportingServiceStub(deps(request).channels["reporting"])  # type: ignore[no-untyped-call,unused-ignore]
    req = _request(request)
    req.with_comments = csv  # the satisfaction CSV's comments section
    resp: reporting_pb2.Report = await stub.GetReport(req, metadata=metadata(request), timeout=60)
    return resp


async def get_report(request: web.Request) -> web.Response:
    return json_response(report_json(await _report(request)), customer_data=False)


async def get_report_csv(request: web.Request) -> web.StreamResponse:
    report = await _report(request, csv=True)  # errors before anything is sent
    name = report_csv.filename(report)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        }
    )
    await response.prepare(request)
    for line in report_csv.csv_lines(report):
        await response.write(line.encode())
    await response.write_eof()
    return response


async def get_survey_comments(request: web.Request) -> web.Response:
    """The satisfaction surveys' comments, newest first, paged (see_reports; the caller's
    inboxes only)."""
    q = request.query
    limit = q.get("limit", "")
    req = reporting_pb2.ListSurveyCommentsRequest(
        to=q.get("to", ""),
        time_zone=q.get("tz", ""),
        inbox_id=q.get("inbox_id", ""),
        operator_id=q.get("operator_id", ""),
        cursor=q.get("cursor", ""),
        limit=whole_number(limit, "limit", 1, 200) if limit else 0,
    )
    setattr(req, "from", q.get("from", ""))
    stub = reporting_pb2_grpc.ReportingServiceStub(deps(request).channels["reporting"])  # type: ignore[no-untyped-call,unused-ignore]
    resp: reporting_pb2.SurveyComments = await stub.ListSurveyComments(
        req, metadata=metadata(request), timeout=30
    )
    return page_response(
        [
            {
                "survey_id": c.survey_id,
                "ticket_id": c.ticket_id,
                "ticket_number": c.ticket_number,
                "inbox_id": c.inbox_id,
                "inbox": c.inbox_name,
                "rating": c.rating,
                "comment": c.comment,
                "operator_id": c.operator_id or None,
                "operator": c.operator_name if c.operator_id else None,
                "answered_at": c.answered_at,
            }
            for c in resp.comments
        ],
        resp.next_cursor,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/reports/satisfaction/comments", get_survey_comments)
    app.router.add_get(f"/api/v1/reports/{REPORT}.csv", get_report_csv)
    app.router.add_get(f"/api/v1/reports/{REPORT}", get_report)
