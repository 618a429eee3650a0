"""`GET /data/{token}`: a bought dataset, through its signed download link (services.datasets).

Answers: 200 with the file (streamed, `Content-Disposition: attachment`); a malformed or tampered link 403,
an expired link or a refunded purchase 410, each as an RFC 9457 problem (`application/problem+json`),
nothing served."""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.datasets import FORMATS, DatasetService, LinkRefused

PATH = "/data/{token}"


def problem(refused: LinkRefused) -> web.Response:
    return web.json_response({"type": "about:blank", "title": refused.title, "status": refused.status,
                              "detail": refused.detail}, status=refused.status,
                             content_type="application/problem+json")


#: Exports built at once (each reads its whole dataset; more wait their turn rather than share the CPU and
#: the database).
EXPORTS_AT_ONCE = 2


def download_handler(datasets: DatasetService):
    turns = asyncio.Semaphore(EXPORTS_AT_ONCE)

    async def download(request: web.Request) -> web.StreamResponse:
        try:
            purchase, fmt, source = await datasets.open(request.match_info["token"])
        except LinkRefused as refused:
            return problem(refused)
        async with turns:
            return await send(request, purchase, fmt, source)

    async def send(request: web.Request, purchase, fmt: str, source) -> web.StreamResponse:
        pieces = datasets.export(purchase, fmt, source)
        first = await anext(pieces, b"")  # a failure before any byte is still a plain 500
        response = web.StreamResponse(headers={
            "Content-Type": FORMATS[fmt], "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="{datasets.filename(purchase, fmt)}"'})
        await response.prepare(request)
        await response.write(first)
        async for piece in pieces:
            await response.write(piece)
        await response.write_eof()
        return response

    return download


def add_routes(app: web.Application, datasets: DatasetService) -> None:
    app.router.add_get(PATH, download_handler(datasets))
