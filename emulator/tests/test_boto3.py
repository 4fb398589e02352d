"""boto3 cannot tell the emulator from EventBridge for the partner-source operations.

Starts the `eventbridge-partner-emulator` binary (from $EMULATOR_BIN, else
target/debug/ of the workspace; build it with `cargo build -p
eventbridge-partner-emulator`), reads its LISTENING line and drives it with
boto3. Needs `pip install boto3 pytest`.
"""

import datetime
import json
import os
import pathlib
import selectors
import subprocess
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = pathlib.Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
CUSTOMER = "222222222222"
NAME = "aws.partner/acme.com/customer-4711/orders"


def emulator_binary() -> str:
    explicit = os.environ.get("EMULATOR_BIN")
    if explicit:
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "debug" / "eventbridge-partner-emulator")


def run_emulator(*flags):
    proc = subprocess.Popen(
        [emulator_binary(), "--region", REGION, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        line = ""
        while not line.startswith("LISTENING "):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(timeout=remaining):
                pytest.fail("emulator did not announce LISTENING in time")
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"emulator exited with {proc.returncode}")
        yield line.split(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def endpoint():
    yield from run_emulator()


@pytest.fixture(scope="module")
def short_lived():
    """An emulator whose pending sources expire after 1 s, or 2 s after a deactivation."""
    yield from run_emulator("--pending-expiration-secs", "1", "--deactivated-expiration-secs", "2")


def client(endpoint, access_key_id="AKIDPARTNEREXAMPLE"):
    return boto3.client(
        "events",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=access_key_id,
        aws_secret_access_key="not-checked",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def admin(endpoint, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{endpoint}/_emulator/{path}",
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def error_of(excinfo):
    return excinfo.value.response["Error"]


def test_create_describe_and_already_exists(endpoint):
    events = client(endpoint)
    created = events.create_partner_event_source(Name=NAME, Account=CUSTOMER)
    arn = f"arn:aws:events:{REGION}::event-source/{NAME}"
    assert created["EventSourceArn"] == arn
    assert created["ResponseMetadata"]["RequestId"]

    described = events.describe_partner_event_source(Name=NAME)
    assert described["Arn"] == arn
    assert described["Name"] == NAME

    accounts = events.list_partner_event_source_accounts(EventSourceName=NAME)
    [entry] = accounts["PartnerEventSourceAccounts"]
    assert entry["Account"] == CUSTOMER
    assert entry["State"] == "PENDING"
    assert isinstance(entry["CreationTime"], datetime.datetime)
    assert entry["ExpirationTime"] - entry["CreationTime"] == datetime.timedelta(days=7)

    with pytest.raises(events.exceptions.ResourceAlreadyExistsException) as excinfo:
        events.create_partner_event_source(Name=NAME, Account=CUSTOMER)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    seen = client(endpoint, CUSTOMER).describe_event_source(Name=NAME)
    assert seen["State"] == "PENDING"
    assert seen["CreatedBy"] == "acme.com"

    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_partner_event_source(Name="aws.partner/acme.com/nobody/orders")


def test_validation_names_the_member(endpoint):
    events = client(endpoint)
    with pytest.raises(ClientError) as excinfo:
        events.create_partner_event_source(Name="acme.com/customer/orders", Account=CUSTOMER)
    error = error_of(excinfo)
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "1 validation error detected: Value 'acme.com/customer/orders' at 'name' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        r"aws\.partner(/[\.\-_A-Za-z0-9]+){2,}"
    )

    # 13 digits passes botocore's client-side checks (it checks only the minimum length).
    with pytest.raises(ClientError) as excinfo:
        events.create_partner_event_source(Name=NAME + "-2", Account="1234567890123")
    error = error_of(excinfo)
    assert error["Code"] == "ValidationException"
    assert "at 'account' failed to satisfy constraint: Member must have length less than or equal to 12" in (
        error["Message"]
    )


def test_injected_faults_reach_boto3(endpoint):
    events = client(endpoint)
    admin(
        endpoint,
        "faults/errors",
        {"operation": "DescribePartnerEventSource", "errors": ["ThrottlingException", "InternalException"]},
    )
    with pytest.raises(ClientError) as excinfo:
        events.describe_partner_event_source(Name=NAME)
    assert error_of(excinfo)["Code"] == "ThrottlingException"
    with pytest.raises(events.exceptions.InternalException) as excinfo:
        events.describe_partner_event_source(Name=NAME)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert events.describe_partner_event_source(Name=NAME)["Name"] == NAME

    calls = admin(endpoint, "calls")["DescribePartnerEventSource"]["outcomes"]
    assert calls["ThrottlingException"] == 1
    assert calls["InternalException"] == 1


def test_default_expiration_periods(endpoint):
    config = admin(endpoint, "config")
    assert config["pending_expiration_secs"] == 7 * 24 * 3600
    assert config["deactivated_expiration_secs"] == 14 * 24 * 3600


def test_never_activated_source_expires(short_lived):
    events = client(short_lived)
    name = "aws.partner/acme.com/boto-never/orders"
    events.create_partner_event_source(Name=name, Account=CUSTOMER)
    [entry] = events.list_partner_event_source_accounts(EventSourceName=name)["PartnerEventSourceAccounts"]
    assert entry["ExpirationTime"] - entry["CreationTime"] == datetime.timedelta(seconds=1)
    time.sleep(1.2)
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_partner_event_source(Name=name)
    listed = events.list_partner_event_sources(NamePrefix="aws.partner/acme.com/boto-never/")
    assert listed["PartnerEventSources"] == []


def test_deleting_the_bus_returns_the_source_to_pending_until_it_expires(short_lived):
    events = client(short_lived)
    customer = client(short_lived, CUSTOMER)
    name = "aws.partner/acme.com/boto-bus/orders"
    events.create_partner_event_source(Name=name, Account=CUSTOMER)
    customer.create_event_bus(Name=name, EventSourceName=name)
    assert customer.describe_event_source(Name=name)["State"] == "ACTIVE"

    before = datetime.datetime.now(datetime.timezone.utc)
    customer.delete_event_bus(Name=name)
    seen = customer.describe_event_source(Name=name)
    assert seen["State"] == "PENDING"
    assert seen["ExpirationTime"] >= before + datetime.timedelta(seconds=1.9)
    with pytest.raises(customer.exceptions.InvalidStateException):
        customer.activate_event_source(Name=name)
    customer.delete_event_bus(Name=name)  # a missing bus is no error
    with pytest.raises(ClientError) as excinfo:
        customer.delete_event_bus(Name="default")
    assert error_of(excinfo)["Code"] == "ValidationException"

    time.sleep(2.2)
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.list_partner_event_source_accounts(EventSourceName=name)
    with pytest.raises(customer.exceptions.ResourceNotFoundException):
        customer.describe_event_source(Name=name)


def test_deactivated_source_expires_and_the_customer_sees_it_deleted(short_lived):
    events = client(short_lived)
    customer = client(short_lived, CUSTOMER)
    name = "aws.partner/acme.com/boto-deactivated/orders"
    events.create_partner_event_source(Name=name, Account=CUSTOMER)
    customer.create_event_bus(Name=name, EventSourceName=name)
    customer.deactivate_event_source(Name=name)
    assert customer.describe_event_source(Name=name)["State"] == "PENDING"
    time.sleep(2.2)
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_partner_event_source(Name=name)
    assert customer.describe_event_source(Name=name)["State"] == "DELETED"


def test_admin_delete_bus_and_expire_shortcuts(endpoint):
    events = client(endpoint)
    name = "aws.partner/acme.com/boto-admin/orders"
    events.create_partner_event_source(Name=name, Account=CUSTOMER)
    admin(endpoint, "sources/activate", {"name": name})
    assert admin(endpoint, "sources/delete-bus", {"name": name})["affected"] == 1
    [entry] = events.list_partner_event_source_accounts(EventSourceName=name)["PartnerEventSourceAccounts"]
    assert entry["State"] == "PENDING"
    admin(endpoint, "sources/expire", {"name": name})
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_partner_event_source(Name=name)


ROLE = "arn:aws:iam::444444444444:role/partners/acme-prod"


def sts_client(endpoint, access_key_id="AKIDPARTNEREXAMPLE", secret="not-checked", token=None):
    return boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def events_with(endpoint, creds):
    return boto3.client(
        "events",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_sts_assume_role_acts_as_the_role_account(endpoint):
    assert admin(endpoint, "roles", {"arn": ROLE, "external_id": "tenant-acme"})["account"] == "444444444444"
    base = sts_client(endpoint)
    me = base.get_caller_identity()
    assert me["Account"] == "111111111111"
    assert me["Arn"] == "arn:aws:iam::111111111111:root"

    out = base.assume_role(RoleArn=ROLE, RoleSessionName="boto", ExternalId="tenant-acme", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert isinstance(creds["Expiration"], datetime.datetime)
    remaining = creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(seconds=890) < remaining <= datetime.timedelta(seconds=901)
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::444444444444:assumed-role/acme-prod/boto"

    assumed = sts_client(endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    me = assumed.get_caller_identity()
    assert me["Account"] == "444444444444"
    assert me["Arn"] == "arn:aws:sts::444444444444:assumed-role/acme-prod/boto"
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]

    name = "aws.partner/acme.com/boto-sts/orders"
    events_with(endpoint, creds).create_partner_event_source(Name=name, Account=CUSTOMER)
    [source] = [s for s in admin(endpoint, "state")["sources"] if s["name"] == name]
    assert source["partner_account"] == "444444444444"
    with pytest.raises(ClientError) as excinfo:
        client(endpoint).describe_partner_event_source(Name=name)
    assert error_of(excinfo)["Code"] == "ResourceNotFoundException"


def test_sts_access_denied_and_validation(endpoint):
    admin(endpoint, "roles", {"arn": ROLE, "external_id": "tenant-acme"})
    base = sts_client(endpoint)
    for kwargs in [{}, {"ExternalId": "tenant-wrong"}]:
        with pytest.raises(ClientError) as excinfo:
            base.assume_role(RoleArn=ROLE, RoleSessionName="boto", **kwargs)
        assert error_of(excinfo)["Code"] == "AccessDenied"
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as excinfo:
        base.assume_role(RoleArn="arn:aws:iam::555555555555:role/nobody", RoleSessionName="boto")
    assert error_of(excinfo)["Code"] == "AccessDenied"
    assert "not authorized to perform: sts:AssumeRole" in error_of(excinfo)["Message"]
    with pytest.raises(ClientError) as excinfo:
        base.assume_role(RoleArn=ROLE, RoleSessionName="boto", ExternalId="tenant-acme", DurationSeconds=7200)
    assert error_of(excinfo)["Code"] == "ValidationError"


def test_sts_expired_credentials(endpoint):
    admin(endpoint, "roles", {"arn": ROLE, "max_session_duration_secs": 1})
    creds = sts_client(endpoint).assume_role(RoleArn=ROLE, RoleSessionName="short")["Credentials"]
    events = events_with(endpoint, creds)
    events.list_partner_event_sources(NamePrefix="aws.partner/acme.com/")
    wait = (creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    time.sleep(max(wait, 0) + 0.1)
    with pytest.raises(ClientError) as excinfo:
        events.list_partner_event_sources(NamePrefix="aws.partner/acme.com/")
    assert error_of(excinfo)["Code"] == "ExpiredTokenException"
    with pytest.raises(ClientError) as excinfo:
        sts_client(endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]).get_caller_identity()
    assert error_of(excinfo)["Code"] == "ExpiredToken"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
