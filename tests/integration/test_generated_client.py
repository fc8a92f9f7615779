"""An outside tool, as it is: openapi-python-client generates a client from the live /api/schema/,
and that client, unpatched, drives a live server and a real Celery worker through a whole sale:
list datasets → create one → upload its file → publish → buy → poll until settled → download.

If the schema offered a body in three encodings, named a type wrongly or left a status out, the
generated package would fail to import, or a call would fail to parse its answer (the client is
built with raise_on_unexpected_status: an undocumented status is an error)."""

import importlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from marketplace.models import Membership
from tests.factories import PASSWORD, MembershipFactory, OrganisationFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent)) or shutil.which(
    "openapi-python-client"
)
PACKAGE = "elementa_client"
# The one generator setting: the rule-pack export is YAML, which the generator reads as text only when told.
CONFIG = "content_type_overrides:\n  application/yaml: text/plain\npost_hooks: []\n"
CSV = b"region,customers\nBerlin,120\nMunich,80\n"


@pytest.fixture
def generated_client(live_server: Any, tmp_path: Path) -> Iterator[ModuleType]:
    if GENERATOR is None:
        pytest.skip("openapi-python-client is not installed (requirements.txt pins it)")
    schema = requests.get(f"{live_server.url}/api/schema/", headers={"Accept": "application/json"}, timeout=60)
    assert schema.status_code == 200, schema.text[:500]
    (tmp_path / "openapi.json").write_bytes(schema.content)
    (tmp_path / "config.yaml").write_text(CONFIG)
    run = subprocess.run(
        [GENERATOR, "generate", "--path", "openapi.json", "--meta", "none", "--output-path", PACKAGE,
         "--config", "config.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Warning" not in output and "WARNING" not in output, output  # nothing in the schema was skipped
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _member(name: str, jurisdiction: str, role: str) -> Membership:
    return MembershipFactory.create(
        organisation=OrganisationFactory.create(name=name, jurisdiction=jurisdiction), role=role
    )


def test_a_generated_client_buys_and_downloads_a_dataset(
    generated_client: ModuleType, live_server: Any, celery_worker: Any, rulepacks: None
) -> None:
    api = importlib.import_module(f"{PACKAGE}.api")
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    client_module = importlib.import_module(f"{PACKAGE}.client")
    for area in ("auth", "catalogue", "trades", "access"):
        importlib.import_module(f"{PACKAGE}.api.{area}")
    provider = _member("Hamburg Data", "DE", Membership.Role.PROVIDER)
    buyer = _member("Paris Analytics", "FR", Membership.Role.BUYER)

    anonymous = client_module.Client(base_url=live_server.url, raise_on_unexpected_status=True)

    def sign_in(member: Membership) -> Any:
        token_module = importlib.import_module(f"{PACKAGE}.api.auth.auth_token_create")
        token = token_module.sync(
            client=anonymous, body=models.TokenRequestRequest(username=member.user.username, password=PASSWORD)
        )
        assert isinstance(token, models.TokenResponse), token
        return client_module.AuthenticatedClient(
            base_url=live_server.url, token=token.token, raise_on_unexpected_status=True, timeout=60
        )

    seller, shopper = sign_in(provider), sign_in(buyer)
    catalogue = api.catalogue

    # list datasets: nothing published yet
    page = importlib.import_module(f"{catalogue.__name__}.datasets_list").sync(client=shopper)
    assert isinstance(page, models.PaginatedDatasetList) and page.count == 0

    # create a draft listing
    draft = importlib.import_module(f"{catalogue.__name__}.datasets_create").sync(
        client=seller,
        body=models.DatasetRequest(
            title="Berlin retail footfall", subject_jurisdictions=["DE"],
            classification=models.ClassificationEnum.PUBLIC, categories=[models.CategoryEnum.STATISTICS],
            price="25.00", currency="EUR",
        ),
    )
    assert isinstance(draft, models.DatasetDetail) and draft.status == models.DatasetStatusEnum.DRAFT

    # upload its file (the one multipart operation of this path)
    uploaded = importlib.import_module(f"{catalogue.__name__}.datasets_files_create").sync(
        dataset_id=draft.id,
        client=seller,
        body=models.DatasetFileUploadRequest(
            file=types.File(payload=BytesIO(CSV), file_name="footfall.csv", mime_type="text/csv")
        ),
    )
    assert isinstance(uploaded, models.DatasetFile) and uploaded.version == 1

    # publish
    published = importlib.import_module(f"{catalogue.__name__}.datasets_publish_create").sync(
        id=draft.id, client=seller
    )
    assert isinstance(published, models.DatasetDetail) and published.status == models.DatasetStatusEnum.PUBLISHED

    # buy
    trade = importlib.import_module(f"{api.trades.__name__}.trades_create").sync(
        client=shopper, body=models.TradeCreateRequest(dataset=draft.id), idempotency_key="client-test-1"
    )
    assert isinstance(trade, models.Trade), trade
    assert trade.purpose == models.PurposeEnum.RESALE and trade.pricing == models.TradePricingEnum.ONE_TIME

    # poll until the worker has decided and settled it
    retrieve = importlib.import_module(f"{api.trades.__name__}.trades_retrieve")
    deadline = time.monotonic() + 90
    detail = retrieve.sync(id=trade.id, client=shopper)
    while detail.status.value not in ("settled", "rejected", "in_review", "needs_documents", "cancelled"):
        assert time.monotonic() < deadline, f"trade still {detail.status}"
        time.sleep(0.5)
        detail = retrieve.sync(id=trade.id, client=shopper)
    assert detail.status == models.TradeStatusEnum.SETTLED, detail.status
    assert detail.decision.outcome == models.OutcomeEnum.ALLOW
    assert detail.decision.check is not None and detail.decision.checked_at is not None

    # download through the grant the settlement issued
    grants = importlib.import_module(f"{api.access.__name__}.grants_list").sync(client=shopper)
    grant = next(g for g in grants.results if g.trade == trade.id)
    download = importlib.import_module(f"{api.access.__name__}.grants_download_retrieve").sync_detailed(
        id=grant.id, client=shopper
    )
    assert download.status_code == 200
    assert download.content == CSV
    assert download.headers["ETag"]

    # an error answers in the documented shape, parsed by the client
    again = importlib.import_module(f"{api.trades.__name__}.trades_create").sync_detailed(
        client=seller, body=models.TradeCreateRequest(dataset=draft.id)
    )
    assert again.status_code == 403 and isinstance(again.parsed, models.Error)
    assert again.parsed.code == "permission_denied"
