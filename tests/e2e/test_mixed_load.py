"""A short run of the mixed-load benchmark (benchmarks/mixed_load.py) on SQLite: signed ingest from another
process, Crypto Pay webhooks and chatting users at once. Nobody gets a 5xx or "something went wrong", every
accepted row is stored, every paid order is paid, and no background task's exception goes unretrieved."""

from benchmarks.mixed_load import measure


async def test_mixed_load_has_no_server_errors_and_loses_nothing(tmp_path):
    figures = await measure(tmp_path, users=5, ingest_workers=5, payers=1, seconds=5)
    print(figures.report())
    assert figures.accepted_signals and figures.accepted_trades and figures.paid_orders, figures.report()
    assert figures.server_errors == 0, figures.report()
    assert figures.lost == 0, figures.report()
    assert figures.went_wrong == 0 and figures.unanswered == 0, figures.report()
    assert figures.task_exceptions == [], figures.report()
    assert figures.update_latency, figures.report()
