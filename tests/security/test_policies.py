"""`rat admin policies`: the roles and grants as S3 policies and Nessie rules, checked as data and
against an S3 server that enforces IAM policies (moto with `INITIAL_NO_AUTH_ACTION_COUNT`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ratatouille_nb.cli.main import cli
from tests.s3_server import S3Server, start_s3_server, stop_s3_server

BUCKET = "rat-policies"
SETUP_ACTIONS = 4  # create the bucket, the admin user, its key and its policy before moto checks IAM


@pytest.fixture(scope="module")
def enforcing() -> Iterator[tuple[S3Server, dict[str, str]]]:
    import boto3

    server = start_s3_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)})
    try:
        kw: dict[str, Any] = {"endpoint_url": server.endpoint, "region_name": server.region}
        boto3.client("s3", **kw, aws_access_key_id="x", aws_secret_access_key="x").create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **kw, aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="rat-admin")
        key = iam.create_access_key(UserName="rat-admin")["AccessKey"]
        everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="rat-admin", PolicyName="all", PolicyDocument=json.dumps(everything))
        yield server, {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        stop_s3_server(server)


def _client(server: S3Server, key_id: str, secret: str, service: str = "s3") -> Any:
    import boto3

    return boto3.client(service, endpoint_url=server.endpoint, region_name=server.region, aws_access_key_id=key_id, aws_secret_access_key=secret)


def test_policies_confine_each_workspace_on_s3(enforcing: tuple[S3Server, dict[str, str]], tmp_path: Path) -> None:
    import botocore.exceptions

    server, admin = enforcing
    env = {
        "RAT_WAREHOUSE": f"s3://{BUCKET}/wh", "S3_ENDPOINT": server.endpoint, "S3_ACCESS_KEY": admin["id"],
        "S3_SECRET_KEY": admin["secret"], "S3_REGION": server.region,
    }
    runner = CliRunner()

    def rat(user: str, *args: str, ws: str | None = None) -> str:
        argv = ["--home", str(tmp_path / "home"), *(["--workspace", str(tmp_path / ws)] if ws else []), *args]
        result = runner.invoke(cli, argv, obj={}, env={**env, "RAT_USER": user}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    rat("alice", "init", str(tmp_path / "a"), "--name", "a")
    rat("bob", "init", str(tmp_path / "b"), "--name", "b")
    rat("alice", "sql", "CREATE TABLE gold.kpis AS SELECT 1 AS k", ws="a")
    rat("alice", "products", "publish", "gold.kpis", "kpis", "1.0.0", "--access", "b:read", ws="a")
    rat("alice", "sql", "INSERT INTO gold.kpis SELECT 2", ws="a")  # a newer, unpublished snapshot
    rat("bob", "sql", "CREATE TABLE silver.own AS SELECT 1 AS x", ws="b")
    out = tmp_path / "policies"
    assert "wrote" in rat("alice", "admin", "policies", "--out", str(out))

    docs = {p.stem: json.loads(p.read_text()) for p in (out / "s3").glob("*.json")}
    assert set(docs) == {"a", "b"}
    b_pins = next(s for s in docs["b"]["Statement"] if s["Sid"] == "ReadGrantedProductPins")["Resource"]
    assert b_pins and all(r.startswith(f"arn:aws:s3:::{BUCKET}/wh/a/gold/kpis/") for r in b_pins)
    assert not any(s["Sid"] == "ReadGrantedProductPins" for s in docs["a"]["Statement"])  # a owns its own files
    # Listing is limited to the own prefix by a condition (moto does not evaluate IAM conditions: checked as data).
    listing_rule = next(s for s in docs["b"]["Statement"] if s["Sid"] == "ListOwnPrefix")
    assert listing_rule["Condition"] == {"StringLike": {"s3:prefix": ["wh/b/*", "wh/b"]}}
    rules = (out / "nessie" / "authorization.properties").read_text()
    assert "nessie.server.authorization.enabled=true" in rules
    assert "rules.rat_a_alice=role=='alice' && op in [" in rules and "ref == 'workspace/a'" in rules
    assert "rules.rat_b_bob=role=='bob'" in rules and "rules.rat_admins=role in ['alice']" in rules

    # Apply them: one IAM user per workspace, as the compose file's MinIO init does.
    iam = _client(server, admin["id"], admin["secret"], "iam")
    keys = {}
    for name, doc in docs.items():
        iam.create_user(UserName=f"ws-{name}")
        iam.put_user_policy(UserName=f"ws-{name}", PolicyName="rat", PolicyDocument=json.dumps(doc))
        k = iam.create_access_key(UserName=f"ws-{name}")["AccessKey"]
        keys[name] = _client(server, k["AccessKeyId"], k["SecretAccessKey"])
    raw = _client(server, admin["id"], admin["secret"])
    listing = [o["Key"] for o in raw.list_objects_v2(Bucket=BUCKET, Prefix="wh/a/")["Contents"]]
    pinned = {r.split(f"{BUCKET}/", 1)[1] for r in b_pins}
    unpublished = [k for k in listing if k.endswith(".parquet") and k not in pinned]
    assert unpublished

    b = keys["b"]
    b.put_object(Bucket=BUCKET, Key="wh/b/exports/x.csv", Body=b"1")
    assert b.get_object(Bucket=BUCKET, Key="wh/b/exports/x.csv")["Body"].read() == b"1"
    for key in pinned:
        b.get_object(Bucket=BUCKET, Key=key)
    denied = [
        lambda: b.get_object(Bucket=BUCKET, Key=unpublished[0]),
        lambda: b.put_object(Bucket=BUCKET, Key=sorted(pinned)[0], Body=b"x"),
        lambda: b.put_object(Bucket=BUCKET, Key="wh/a/pipelines/evil.sql", Body=b"x"),
        lambda: b.delete_object(Bucket=BUCKET, Key=sorted(pinned)[0]),
    ]
    for number, attempt in enumerate(denied):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            attempt()
            pytest.fail(f"attempt {number} was allowed")
        assert info.value.response["Error"]["Code"] == "AccessDenied"
    keys["a"].get_object(Bucket=BUCKET, Key=unpublished[0])  # the owner reads its own files


def test_policies_are_an_administrators_verb(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    assert runner.invoke(cli, [*home, "init", str(tmp_path / "a"), "--name", "a"], obj={}, env={"RAT_USER": "alice"}).exit_code == 0
    result = runner.invoke(cli, [*home, "admin", "policies", "--out", str(tmp_path / "p")], obj={}, env={"RAT_USER": "bob"})
    assert result.exit_code == 1 and "principal 'bob' is not an administrator" in result.stderr
    assert not (tmp_path / "p").exists()
    ok = runner.invoke(cli, [*home, "admin", "policies", "--out", str(tmp_path / "p")], obj={}, env={"RAT_USER": "alice"})
    assert ok.exit_code == 0 and "no S3 policies: the warehouse is local" in ok.stdout
    assert "rat_a_alice" in (tmp_path / "p" / "nessie" / "authorization.properties").read_text()
