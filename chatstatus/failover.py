"""After a Redis Sentinel failover, publish the truth once more.

The channel layer is pub/sub: a push published while the old master was dying,
or before a web process's subscription reconnected to the new one, reaches no
socket, and nothing would correct it (reads are right; pushes are not
repeated). And replication is asynchronous: the new master may lack the last
writes of the old one. So a failover gets the recovery a Redis restart gets:
``presence_resync`` — every account's snapshot and every operator's status
published again.

The one beat process watches the sentinels' ``+switch-master`` channel
(``FailoverWatch``, a daemon thread per sentinel; the first to report a switch
wins, the others' reports of the same switch are ignored), drops the chat
boxes' refresh locks (one held when the master died is on the new master with
its release lost: every refresh of that account would wait for it; see
``presence.services.presence_after_failover``) and has the truth
published twice (``presence_resync_later``, as a sweep does after a restart:
two moments kept in the store, taken up by the next boundary runs): seconds
after the switch, when the web processes' subscriptions have reconnected
(channels_redis retries every second), and once more later for a process that
was slower. A socket ignores a snapshot version it already has, and a status it
already shows changes nothing.
"""

import logging
import threading
import time
from collections.abc import Callable

import redis

from chatstatus.metrics import REDIS_FAILOVERS

logger = logging.getLogger(__name__)


class FailoverWatch:
    def __init__(
        self, *, sentinels: tuple[tuple[str, int], ...], master: str, on_switch: Callable[[str], None]
    ) -> None:
        self.sentinels = sentinels
        self.master = master
        self.on_switch = on_switch
        self._lock = threading.Lock()
        self._last: str | None = None
        self._stop = threading.Event()

    def start(self) -> "FailoverWatch":
        for host, port in self.sentinels:
            threading.Thread(target=self._watch, args=(host, port), name=f"failover-{port}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def switched(self, data: str) -> None:
        """One ``+switch-master`` message: ``<name> <old-ip> <old-port> <new-ip> <new-port>``."""
        parts = data.split()
        if len(parts) != 5 or parts[0] != self.master:
            return
        new_master = f"{parts[3]}:{parts[4]}"
        with self._lock:
            if new_master == self._last:
                return  # another sentinel reported the same switch
            self._last = new_master
        REDIS_FAILOVERS.inc()
        logger.warning("Redis master %s switched to %s: publishing the truth again", self.master, new_master)
        try:
            self.on_switch(new_master)
        except Exception:
            logger.exception("the resync after the failover could not be scheduled")

    def _watch(self, host: str, port: int) -> None:
        while not self._stop.is_set():
            client = redis.Redis(host=host, port=port, socket_connect_timeout=1, socket_timeout=None)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe("+switch-master")
                for message in pubsub.listen():
                    if self._stop.is_set():
                        return
                    if message and message.get("type") == "message":
                        data = message["data"]
                        self.switched(data.decode() if isinstance(data, bytes) else str(data))
            except redis.RedisError:
                pass  # this sentinel is down: the others report the switch; try it again shortly
            finally:
                pubsub.close()
                client.close()
            time.sleep(1)  # a sentinel that is down: retry every second, there is no event to wait on
