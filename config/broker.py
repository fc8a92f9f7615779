"""kombu's filesystem transport with atomic message writes: the embedded broker.

Upstream `_put` creates the message file under its final name, then locks and writes it; a
consumer lists the folder, renames the file away (a lock does not stop a rename) and can read it
before the write lands: an empty payload, a JSONDecodeError in the worker, and a lost message (seen
in this project's test suite). Here a message is written under a name the consumer ignores
(`….msg.part`) and renamed into place with os.replace, which is atomic on POSIX.

Registered as the `filesystem://` transport, so broker URLs and settings are unchanged.

The Redis transport (`redis://`) gets two guards (the second is `RedisQoS`, below). When the worker
loses Redis it closes the old connection: kombu detaches the transport (`transport.client = None`)
even if a channel could not be closed because Redis was down at that moment. Whatever later touches
such a channel (restoring its unacknowledged messages at close, an ack of a task that was still
running) asks for connection parameters and fails with `AttributeError: 'NoneType' object has no
attribute 'hostname'` in `_connparams`. An AttributeError is not a connection error to Celery, so
the worker logged "Unrecoverable error" and exited. Here a detached channel raises redis'
ConnectionError instead: a connection error Celery already handles (it reconnects, and the broker
redelivers the message).
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem, virtual
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu names the second parameter `message` in its base channel and `payload` in the filesystem
    # channel it overrides; no signature matches both, this one matches the parent.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # _get only takes names ending in "<queue>.msg"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES["filesystem"] = "config.broker:Transport"


class RedisQoS(kombu_redis.QoS):
    """An acknowledgement that cannot reach Redis still frees the worker's prefetch slot.

    Upstream, `ack` removes the message from Redis' unacked index first and forgets the delivery
    locally only if that worked. When Redis is frozen (it accepts connections and answers nothing)
    the removal times out, Celery logs "Couldn't ack" and carries on, and the delivery stays counted
    against the prefetch limit for good: the connection never drops, so nothing restores it. After
    as many failed acks as the worker's concurrency it takes no more messages at all, alive and
    idle, while trades wait (bench/faults.py, scenario 4). Here the slot is freed either way and the
    error still propagates (Celery logs it as before). The message stays in Redis' unacked index,
    so Redis redelivers it after the visibility timeout; the tasks are idempotent, and a repeat
    finds its work done."""

    def ack(self, delivery_tag: Any) -> None:
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)


class RedisChannel(kombu_redis.Channel):
    QoS = RedisQoS

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("the broker connection of this channel was closed (kombu transport detached)")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


TRANSPORT_ALIASES["redis"] = TRANSPORT_ALIASES["rediss"] = "config.broker:RedisTransport"
