"""A publish is one message: it does not subscribe to a result no task here returns."""

from config.celery_app import app
from config.enqueue import enqueue


def test_publishing_a_task_does_not_subscribe_to_its_result(monkeypatch):
    # Celery's send_task by name subscribes to the task's result unless told to ignore it: on the
    # Redis result backend a SUBSCRIBE per publish, and with Redis down about 19 s of reconnects
    # inside the request that published (bench/faults.py, scenario 2, saw a POST take 19.1 s).
    subscribed, sent = [], []
    monkeypatch.setattr(app.backend, "on_task_call", lambda producer, task_id: subscribed.append(task_id))
    monkeypatch.setattr(app.amqp, "send_task_message", lambda producer, name, message, **kw: sent.append(name))

    assert enqueue("marketplace.trades_check_drain") is True

    assert sent == ["marketplace.trades_check_drain"]
    assert subscribed == []
