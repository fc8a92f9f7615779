"""The embedded broker never hands a consumer a half-written message (config/broker.py)."""

import threading

from kombu import Connection, Exchange, Queue

import config.broker  # noqa: F401  (the filesystem:// transport with atomic writes)


def test_consumer_racing_a_publisher_gets_every_message_whole(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "processed_folder": str(tmp_path / "done"),
        "control_folder": str(tmp_path / "control"),
        "polling_interval": 0,
    }
    exchange = Exchange("race", type="direct")
    queue = Queue("race", exchange, routing_key="race")
    sent = 1500
    payload = "x" * 20_000  # large enough that a write is not one instant

    def publish() -> None:
        with Connection("filesystem://", transport_options=options) as conn:
            producer = conn.Producer(serializer="json")
            for i in range(sent):
                producer.publish({"i": i, "body": payload}, exchange=exchange, routing_key="race", declare=[queue])

    received: list[int] = []
    publisher = threading.Thread(target=publish)
    with Connection("filesystem://", transport_options=options) as conn:
        simple = conn.SimpleQueue(queue)
        publisher.start()
        while len(received) < sent:
            message = simple.get(timeout=30)
            assert message.payload["body"] == payload
            received.append(message.payload["i"])
            message.ack()
        simple.close()
    publisher.join()

    assert sorted(received) == list(range(sent))
