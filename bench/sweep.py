"""Stale sweep: 100 000 online operators (10 000 accounts × 10), all with
presence entries in the store, 10 % of them stale. Times one
``presence_sweep()``: the sweep proper (claim, flip, audit rows) and the
recompute + publish of the affected accounts' chat boxes; checks that each
chat box flip is published exactly once and that a second sweep changes nothing.

The stale 10 % are laid out so that both kinds of affected account occur:
5 % of the accounts lose every operator (their chat box flips offline) and
half of the accounts lose one operator of ten (recomputed, unchanged).

Baseline in the same run: a naive sweep, a per-operator loop that reads the
operator's presence, checks it and updates one by one.

    .venv/bin/python bench/sweep.py [--quick]
"""

import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Infra, Report, log, parser, table  # noqa: E402

ACCOUNTS, QUICK_ACCOUNTS = 10_000, 1_000
PER_ACCOUNT = 10
# The targets: one sweep ≤ 1 s, plus the affected accounts recomputed ≤ 2 s.
SWEEP_TARGET_S = 1.0
RECOMPUTE_TARGET_S = 2.0
# Slow phases (the recompute, the naive baseline) stop after this long and the
# rest is extrapolated from what was measured, so one run stays within minutes.
BUDGET_S, QUICK_BUDGET_S = 45.0, 15.0


class Meter:
    """Wraps the services' chat box recompute (``chat_box_refresh``, and
    ``chat_box_refresh_many`` where it exists) and the events' ``publish_many``
    in this process to time and count them; the code paths stay the real ones."""

    REFRESHES = ("chat_box_refresh", "chat_box_refresh_many")

    def __init__(self) -> None:
        from presence import events, services

        self.events, self.services = events, services
        self.real_publish = events.publish_many
        self.real = {name: getattr(services, name) for name in self.REFRESHES if hasattr(services, name)}
        self.reset()

    def reset(self) -> None:
        self.refresh_s = self.publish_s = 0.0
        self.refreshed: Counter = Counter()  # account id → recomputes
        self.messages: list[tuple[str, str]] = []  # (group, message type)
        self._depth = 0

    def _wrap(self, real):  # noqa: ANN001, ANN202
        def refresh(**kwargs):  # noqa: ANN202 (mirrors the service's signature)
            started = time.perf_counter()
            self._depth += 1
            try:
                return real(**kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.refresh_s += time.perf_counter() - started
                ids = kwargs["account_ids"] if "account_ids" in kwargs else [kwargs.get("account_id")]
                self.refreshed.update(ids)

        return refresh

    def __enter__(self) -> "Meter":
        def publish_many(messages: list) -> None:
            started = time.perf_counter()
            self.real_publish(messages)
            if not self._depth:
                self.publish_s += time.perf_counter() - started
            self.messages += [(group, message["type"]) for group, message in messages]

        self.events.publish_many = publish_many
        for name, real in self.real.items():
            setattr(self.services, name, self._wrap(real))
        return self

    def __exit__(self, *exc: object) -> None:
        self.events.publish_many = self.real_publish
        for name, real in self.real.items():
            setattr(self.services, name, real)


def seed_presence(store, entries: list[tuple[int, int, float, float]]) -> None:  # noqa: ANN001
    """Write presence entries (account, operator, last heartbeat, present until)
    through the store's own ``touch`` script, pipelined when the store offers it."""
    from presence.store import OperatorRef

    script, keys = getattr(store, "_touch", None), getattr(store, "_keys", None)
    if script is None or keys is None:
        for account_id, operator_id, heartbeat, until in entries:
            store.touch(
                ref=OperatorRef(account_id, operator_id),
                conn_id="bench",
                device="bench",
                now=heartbeat,
                present_until=until,
            )
        return
    for start in range(0, len(entries), 5_000):
        pipe = store.client.pipeline(transaction=False)
        for account_id, operator_id, heartbeat, until in entries[start : start + 5_000]:
            ref = OperatorRef(account_id, operator_id)
            script(
                keys=keys(ref),
                args=["bench", repr(heartbeat), "bench", repr(until), operator_id, ref.member],
                client=pipe,
            )
        pipe.execute()


def naive_sweep(*, now, stale: int, total: int, budget_s: float) -> dict:  # noqa: ANN001
    """The baseline: every online operator, one at a time: read its presence,
    check it, and flip it with its audit row in a transaction of its own.

    Stops after ``budget_s`` and extrapolates the rest from the measured cost
    of a check and of a flip (the figure says so)."""
    from django.db import transaction

    from accounts.models import Operator, Status
    from presence.models import Source, StatusEvent
    from presence.store import get_store

    store = get_store()
    moment = now.timestamp()
    checked = swept = 0
    flip_s = 0.0
    started = time.perf_counter()
    rows = Operator.objects.filter(status=Status.ONLINE).values_list("id", "account_id")
    for operator_id, account_id in rows.iterator(chunk_size=2_000):
        checked += 1
        raw = store.client.hget(f"{store.prefix}:a:{account_id}:until", operator_id)
        if raw is None or float(raw) <= moment:
            flip_started = time.perf_counter()
            with transaction.atomic():
                if Operator.objects.filter(id=operator_id, status=Status.ONLINE).update(
                    status=Status.OFFLINE, status_changed_at=now
                ):
                    StatusEvent.objects.create(
                        account_id=account_id,
                        operator_id=operator_id,
                        old=Status.ONLINE,
                        new=Status.OFFLINE,
                        source=Source.STALE_SWEEP,
                        at=now,
                    )
                    swept += 1
            flip_s += time.perf_counter() - flip_started
        if time.perf_counter() - started > budget_s:
            break
    elapsed = time.perf_counter() - started
    seconds = elapsed
    if checked < total:
        check_cost = (elapsed - flip_s) / checked
        flip_cost = flip_s / max(swept, 1)
        seconds = elapsed + (total - checked) * check_cost + (stale - swept) * flip_cost
    return {
        "checked": checked,
        "swept": swept,
        "measured_s": round(elapsed, 3),
        "seconds": round(seconds, 3),
        "extrapolated": checked < total,
    }


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n_accounts = QUICK_ACCOUNTS if args.quick else ACCOUNTS
    budget_s = QUICK_BUDGET_S if args.quick else BUDGET_S
    report = Report("sweep", args.quick)
    with Infra("sweep") as infra:
        infra.django()
        from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
        from django.db import connection, transaction
        from django.utils import timezone

        from accounts.models import Account, Operator, Status
        from presence import services
        from presence.models import ChatBoxEvent, Source, StatusEvent
        from presence.selectors import chat_box_states
        from presence.snapshots import chat_box_body
        from presence.store import dumps, get_store

        store = get_store()
        now = timezone.now()
        moment = now.timestamp()
        started = time.monotonic()
        accounts = Account.objects.bulk_create(
            [Account(name=f"Sweep {i}") for i in range(n_accounts)], batch_size=2_000
        )
        operators = Operator.objects.bulk_create(
            [
                Operator(
                    account_id=account.id,
                    email=f"s{a}-{j}@bench.example",
                    display_name=f"Operator {j}",
                    status=Status.ONLINE,
                    status_changed_at=now,
                    password=UNUSABLE_PASSWORD_PREFIX + "bench",  # no password: cannot log in
                )
                for a, account in enumerate(accounts)
                for j in range(PER_ACCOUNT)
            ],
            batch_size=5_000,
        )
        log(f"{len(accounts):,} accounts, {len(operators):,} operators inserted in {time.monotonic() - started:.1f} s")

        flipping = accounts[: n_accounts // 20]  # every operator stale: the chat box flips
        thinning = accounts[n_accounts // 20 : n_accounts // 20 + n_accounts // 2]  # one operator of ten stale
        flipping_ids = {account.id for account in flipping}
        thinning_ids = {account.id for account in thinning}
        stale_ids = set()
        for index, operator in enumerate(operators):
            if operator.account_id in flipping_ids or (
                operator.account_id in thinning_ids and index % PER_ACCOUNT == 0
            ):
                stale_ids.add(operator.id)
        affected_ids = flipping_ids | thinning_ids

        def presence_entries() -> list[tuple[int, int, float, float]]:
            return [
                (op.account_id, op.id, moment - 300, moment - 5)
                if op.id in stale_ids
                else (op.account_id, op.id, moment, moment + 600)
                for op in operators
            ]

        started = time.monotonic()
        seed_presence(store, presence_entries())
        store.ensure_epoch()  # a store that has been running: no reseed on the first sweep
        # Every account starts with its materialised snapshot (online), as in a running system.
        body = dumps(chat_box_body(chat_box_states(account_ids=[accounts[-1].id], now=now)[accounts[-1].id]))
        assert '"status":"online"' in body, body
        for account in accounts:
            store.snapshot_store(account_id=account.id, body=body, due_at=None, now=moment)
        log(
            f"presence entries and snapshots written in {time.monotonic() - started:.1f} s; "
            f"{len(stale_ids):,} stale operators in {len(affected_ids):,} accounts"
        )

        with Meter() as meter:
            # The sweep runs in a transaction of ours so that what it leaves for
            # after the commit (publish, recompute) can be timed on its own: in a
            # Celery task (autocommit) those callbacks run inline, in this order.
            started = time.perf_counter()
            with transaction.atomic():
                mark = len(connection.run_on_commit)
                swept = services.presence_sweep(now=now)
                callbacks = connection.run_on_commit[mark:]
                del connection.run_on_commit[mark:]
            sweep_s = time.perf_counter() - started - meter.refresh_s - meter.publish_s
            inline_s = meter.refresh_s + meter.publish_s
            started = time.perf_counter()
            done = 0
            for _savepoints, callback, _robust in callbacks:
                callback()
                done += 1
                if time.perf_counter() - started > budget_s:
                    break
            callbacks_s = time.perf_counter() - started
            if not callbacks and not meter.refreshed:
                # A sweep that leaves the recompute to someone else: do it here, timed.
                for account_id in sorted(affected_ids):
                    services.chat_box_refresh(account_id=account_id)
                    done += 1
                    if time.perf_counter() - started > budget_s:
                        break
                callbacks_s = time.perf_counter() - started
            planned = len(callbacks) or len(affected_ids)
            recompute_s = inline_s + callbacks_s
            complete = done >= planned
            if not complete:
                log(f"recompute budget of {budget_s:.0f} s spent after {done:,} of {planned:,}; extrapolating")
                recompute_s = inline_s + callbacks_s * planned / max(done, 1)
            messages = list(meter.messages)
            refreshed = Counter(meter.refreshed)
            refresh_s, status_publish_s = meter.refresh_s, meter.publish_s

            meter.reset()
            started = time.perf_counter()
            swept_again = services.presence_sweep(now=now)
            second_s = time.perf_counter() - started
            second_messages, second_refreshes = len(meter.messages), sum(meter.refreshed.values())

        snapshot_pushes = Counter(group for group, kind in messages if kind == "widget.snapshot")
        status_pushes = sum(1 for _group, kind in messages if kind == "operator.status")
        from presence.events import widget_group

        # Only the accounts whose recompute ran within the budget can be checked.
        flipping_done = flipping_ids if complete else flipping_ids & set(refreshed)
        flipped_once = all(snapshot_pushes.get(widget_group(account_id), 0) == 1 for account_id in flipping_done)
        unchanged_silent = all(widget_group(account_id) not in snapshot_pushes for account_id in thinning_ids)
        stale_in_done = sum(1 for op in operators if op.id in stale_ids and (complete or op.account_id in refreshed))
        online_left = Operator.objects.filter(status=Status.ONLINE).count()
        events = StatusEvent.objects.filter(source=Source.STALE_SWEEP).count()
        box_events = ChatBoxEvent.objects.count()

        # --- the naive baseline on the same data --------------------------------------
        log("naive baseline: restoring the stale operators")
        Operator.objects.filter(id__in=stale_ids).update(status=Status.ONLINE)
        seed_presence(store, [entry for entry in presence_entries() if entry[1] in stale_ids])
        naive = naive_sweep(now=now, stale=len(stale_ids), total=len(operators), budget_s=budget_s)
        naive_s = naive["seconds"]

        report.details = {
            "operators": len(operators),
            "accounts": len(accounts),
            "stale": len(stale_ids),
            "affected_accounts": len(affected_ids),
            "flipping_accounts": len(flipping_ids),
            "swept": swept,
            "total_s": round(sweep_s + recompute_s, 3),
            "sweep_s": round(sweep_s, 3),
            "recompute_and_publish_s": round(recompute_s, 3),
            "recompute_complete": complete,
            "recompute_measured": {"callbacks_run": done, "of": planned, "seconds": round(callbacks_s, 3)},
            "refresh_s": round(refresh_s, 3),
            "status_publish_s": round(status_publish_s, 3),
            "refreshes": sum(refreshed.values()),
            "max_refreshes_per_account": max(refreshed.values(), default=0),
            "snapshot_publishes": sum(snapshot_pushes.values()),
            "status_publishes": status_pushes,
            "chat_box_events": box_events,
            "second_sweep": {
                "swept": swept_again,
                "seconds": round(second_s, 3),
                "messages": second_messages,
                "refreshes": second_refreshes,
            },
            "naive": naive,
        }
        print()
        print(
            table(
                ["phase", "seconds"],
                [
                    ["sweep (claim, flip, audit rows)", f"{sweep_s:.3f}"],
                    [
                        f"recompute + publish ({len(affected_ids):,} accounts)",
                        f"{recompute_s:.3f}{'' if complete else ' (≈)'}",
                    ],
                    ["presence_sweep() total", f"{sweep_s + recompute_s:.3f}"],
                    ["second sweep", f"{second_s:.3f}"],
                    [
                        "naive per-operator sweep (no recompute)",
                        f"{naive_s:.3f}{' (≈)' if naive['extrapolated'] else ''}",
                    ],
                ],
            )
        )
        report.figure(
            f"sweep of {len(operators):,} operators, {len(stale_ids):,} stale",
            round(sweep_s, 3),
            "s",
            target=f"≤ {SWEEP_TARGET_S:g} s",
            met=sweep_s <= SWEEP_TARGET_S,
            baseline=round(naive_s, 3),
        )
        approx = "" if complete else " (extrapolated)"
        report.figure(
            f"recompute + publish of {len(affected_ids):,} accounts{approx}",
            round(recompute_s, 3),
            "s",
            target=f"≤ {RECOMPUTE_TARGET_S:g} s",
            met=recompute_s <= RECOMPUTE_TARGET_S,
        )
        report.figure(f"sweep + recompute total{approx}", round(sweep_s + recompute_s, 3), "s")
        report.figure("second sweep", round(second_s, 3), "s")
        report.check("every stale operator swept", swept == len(stale_ids))
        report.check("fresh operators left online", online_left == len(operators) - len(stale_ids))
        report.check("one audit row per swept operator", events == len(stale_ids))
        report.check("each chat box flip published exactly once", flipped_once)
        report.check("unchanged chat boxes not published", unchanged_silent)
        report.check("one chat box event per flip", box_events == len(flipping_done))
        report.check("one status message per swept operator", status_pushes == stale_in_done)
        report.check(
            "second sweep changes nothing", swept_again == 0 and second_messages == 0 and second_refreshes == 0
        )
        if not naive["extrapolated"]:
            report.check("naive baseline swept the same operators", naive["swept"] == len(stale_ids))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
