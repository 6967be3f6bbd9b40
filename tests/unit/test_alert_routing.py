"""The alert routing file (slawatch/alerting/) and ``slawatch check-config --routing``.

Every class of error is reported as ``file:line: field: message (hint: ...)``, all of them
at once; secrets come from the environment or files, and never show: not in a repr, a
string, an f-string, nor in any problem.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from slawatch.alerting.config import RoutingFileError, load_routing, parse_routing
from slawatch.alerting.receivers import MASK, Secret
from slawatch.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/sekrit-slack-token"
ENV = {"SLACK_WEBHOOK_URL": SLACK_URL, "SMTP_PASSWORD": "sekrit-smtp-password"}
PD_KEY = "sekrit-pagerduty-routing-key"

EXAMPLE = """\
receivers:
  team-slack:
    type: slack
    webhook_url: {env: SLACK_WEBHOOK_URL}
  oncall:
    type: pagerduty
    routing_key: {file: pagerduty.key}
  manager:
    type: email
    to: [support-manager@example.com]
    from: slawatch@example.com
    smtp: smtp.example.com:587
    password: {env: SMTP_PASSWORD}
  ops:
    type: webhook
    url: https://ops.example.com/hooks/sla
routes:
  - name: billing
    match: {department: billing, priority: [high, urgent]}
    escalation:
      - {on: at_risk, to: [team-slack]}
      - {on: breached, to: [oncall], repeat: 30m}
      - {on: breached, after: 15m, to: [manager]}
    continue: true
  - name: everything
    escalation:
      - {on: missed, to: ops}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pagerduty.key").write_text(PD_KEY + "\n")
    return tmp_path


def problems(text: str, folder: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(RoutingFileError) as caught:
        parse_routing(textwrap.dedent(text), "r.yaml", env=ENV if env is None else env,
                      base_dir=folder)  # fmt: skip
    return caught.value.lines()


def test_the_example_loads(folder: Path) -> None:
    config = parse_routing(EXAMPLE, "r.yaml", env=ENV, base_dir=folder)
    assert list(config.receivers) == ["team-slack", "oncall", "manager", "ops"]
    oncall = config.receivers["oncall"]
    assert oncall.type == "pagerduty"
    key = oncall.fields["routing_key"]
    assert isinstance(key, Secret) and key.reveal() == PD_KEY and key.source == "file:pagerduty.key"
    slack = config.receivers["team-slack"].fields["webhook_url"]
    assert isinstance(slack, Secret) and slack.reveal() == SLACK_URL
    assert config.receivers["manager"].fields["to"] == ("support-manager@example.com",)
    billing, everything = config.routes
    assert billing.name == "billing" and billing.continue_ and not everything.continue_
    assert billing.match == {"department": {"billing"}, "priority": {"high", "urgent"}}
    assert [(s.id, s.on, s.to, s.after_ms, s.repeat_ms) for s in billing.steps] == [
        ("billing.1", "at_risk", ("team-slack",), None, None),
        ("billing.2", "breached", ("oncall",), None, 30 * 60_000),
        ("billing.3", "breached", ("manager",), 15 * 60_000, None),
    ]
    assert everything.match == {} and everything.steps[0].to == ("ops",)
    assert config.summary() == "routing: 4 receivers, 2 routes, 4 steps"


def test_secrets_are_masked_everywhere(folder: Path) -> None:
    config = parse_routing(EXAMPLE, "r.yaml", env=ENV, base_dir=folder)
    shown = [repr(config), str(config), f"{config}"]
    for receiver in config.receivers.values():
        for value in receiver.fields.values():
            shown += [
                repr(value),
                str(value),
                f"{value}",
                f"{value!s}",
                format(value, ""),
                "%s" % (value,),  # noqa: UP031
            ]
    secret = config.receivers["oncall"].fields["routing_key"]
    assert repr(secret) == f"Secret(file:pagerduty.key, {MASK!r})" and str(secret) == MASK
    for text in shown:
        for value in (SLACK_URL, "sekrit"):
            assert value not in text


# Each class of error: a document, and the one line it gives.
CASES = {
    "unknown receiver": (
        """\
        receivers:
          ops: {type: webhook, url: "https://ops.example.com/"}
        routes:
          - escalation:
              - {on: breached, to: [ops, pager]}
        """,
        "r.yaml:5: routes[0].escalation[0].to: no receiver 'pager' (hint: receivers: ops)",
    ),
    "bad URL": (
        """\
        receivers:
          am:
            type: alertmanager
            url: ftp://alertmanager:9093
        routes: []
        """,
        "r.yaml:4: receivers.am.url: 'ftp://alertmanager:9093' is not an http(s) URL "
        "(hint: http://host:port/path)",
    ),
    "missing secret variable": (
        """\
        receivers:
          pd:
            type: pagerduty
            routing_key: {env: PD_KEY}
        routes: []
        """,
        "r.yaml:4: receivers.pd.routing_key.env: the environment variable PD_KEY is not set "
        "(hint: export PD_KEY=... before starting slawatch)",
    ),
    "missing secret file": (
        """\
        receivers:
          pd:
            type: pagerduty
            routing_key: {file: nowhere.key}
        routes: []
        """,
        "r.yaml:4: receivers.pd.routing_key.file: cannot read '{folder}/nowhere.key': "
        "No such file or directory (hint: a path relative to the routing file, or absolute)",
    ),
    "secret written in the file": (
        """\
        receivers:
          pd:
            type: pagerduty
            routing_key: sekrit-inline-key
        routes: []
        """,
        "r.yaml:4: receivers.pd.routing_key: a secret is not written in the file "
        "(hint: {env: VARIABLE} or {file: /path/to/file})",
    ),
    "secret URL that is not a URL": (
        """\
        receivers:
          s: {type: slack, webhook_url: {env: SMTP_PASSWORD}}
        routes: []
        """,
        "r.yaml:2: receivers.s.webhook_url: the value of env:SMTP_PASSWORD is not an http(s) URL "
        "(hint: https://hooks.slack.com/services/...)",
    ),
    "unknown type": (
        """\
        receivers:
          x: {type: carrier-pigeon}
        routes: []
        """,
        "r.yaml:2: receivers.x.type: unknown type 'carrier-pigeon' "
        "(hint: types: alertmanager, pagerduty, slack, webhook, email)",
    ),
    "field of another type": (
        """\
        receivers:
          x: {type: webhook, url: "http://h/", channel: "#x"}
        routes: []
        """,
        "r.yaml:2: receivers.x.channel: not a field of a webhook receiver "
        "(hint: webhook fields: url, secret, timeout, rate_per_minute, max_attempts, hours)",
    ),
    "missing field": (
        """\
        receivers:
          m: {type: email, from: a@example.com, smtp: "smtp.example.com:25"}
        routes: []
        """,
        "r.yaml:2: receivers.m.to: a email receiver needs to (hint: to: [oncall@example.com])",
    ),
    "bad e-mail address": (
        """\
        receivers:
          m: {type: email, to: [nobody], from: a@example.com, smtp: "smtp.example.com:25"}
        routes: []
        """,
        "r.yaml:2: receivers.m.to: 'nobody' is not an e-mail address (hint: oncall@example.com)",
    ),
    "bad host:port": (
        """\
        receivers:
          m: {type: email, to: [a@example.com], from: a@example.com, smtp: smtp.example.com}
        routes: []
        """,
        "r.yaml:2: receivers.m.smtp: 'smtp.example.com' is not host:port "
        "(hint: smtp.example.com:587)",
    ),
    "unknown match field": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - match: {colour: red}
            escalation: [{on: breached, to: ops}]
        """,
        "r.yaml:3: routes[0].match.colour: unknown key (hint: known keys: kind, metric, level, "
        "priority, department, queue, tenant, customer_group)",
    ),
    "unknown kind": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - match: {kind: [breached, exploded]}
            escalation: [{on: breached, to: ops}]
        """,
        "r.yaml:3: routes[0].match.kind: unknown kind 'exploded' (hint: kinds: at_risk, breached, "
        "met, missed, cancelled, retracted, level_changed)",
    ),
    "step on an ending kind": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - escalation:
              - on: met
                to: ops
        """,
        "r.yaml:4: routes[0].escalation[0].on: a step cannot be on 'met' (hint: one of at_risk, "
        "breached, missed, level_changed; met, missed, cancelled and retracted resolve every "
        "receiver alerted)",
    ),
    "after on a one-off step": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - escalation:
              - {on: missed, to: ops,
                 after: 5m}
        """,
        "r.yaml:5: routes[0].escalation[0].after: a step on missed is sent once "
        "(hint: after is for steps on at_risk or breached)",
    ),
    "bad duration": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - escalation:
              - {on: breached, to: ops, after: soon}
        """,
        "r.yaml:4: routes[0].escalation[0].after: 'soon' is not a duration like 90s, 15m, 8h or "
        "3d (hint: a number and a unit: 90s, 15m, 8h, 3d)",
    ),
    "repeat too often": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - escalation:
              - {on: breached, to: ops, repeat: 10s}
        """,
        "r.yaml:4: routes[0].escalation[0].repeat: at least 1m (hint: repeat: 30m)",
    ),
    "continue not a flag": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - escalation: [{on: breached, to: ops}]
            continue: sometimes
        """,
        "r.yaml:4: routes[0].continue: expected true or false",
    ),
    "route without escalation": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - match: {kind: breached}
        """,
        "r.yaml:3: routes[0].escalation: missing "
        "(hint: escalation: [{on: breached, to: [oncall]}])",
    ),
    "route name twice": (
        """\
        receivers: {ops: {type: webhook, url: "http://h/"}}
        routes:
          - {name: a, escalation: [{on: breached, to: ops}]}
          - {name: a, escalation: [{on: at_risk, to: ops}]}
        """,
        "r.yaml:4: routes[1].name: 'a' is used twice (hint: step ids are made from route names)",
    ),
    "unknown top-level key": (
        """\
        receivers: {}
        routes: []
        inhibit: []
        """,
        "r.yaml:3: inhibit: unknown key (hint: known keys: receivers, routes, link, calendars)",
    ),
    "missing routes": (
        "receivers: {}\n",
        "r.yaml:1: routes: missing (hint: routes: [{escalation: [{on: breached, to: [oncall]}]}])",
    ),
    "empty file": (
        "",
        "r.yaml:1: (document): the file is empty "
        "(hint: start from the README's alert routing example)",
    ),
    "not YAML": (
        "receivers: [\n",
        "r.yaml:2: (syntax): not valid YAML: did not find expected node content",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_error_is_one_line_with_its_line_and_field(case: str, folder: Path) -> None:
    text, expected = CASES[case]
    assert problems(text, folder) == [expected.replace("{folder}", str(folder))]


def test_every_problem_is_reported_by_line_and_no_secret_shows(folder: Path) -> None:
    (folder / "empty.key").write_text("\n")
    text = """\
        receivers:
          s: {type: slack, webhook_url: {env: SMTP_PASSWORD}}
          pd: {type: pagerduty, routing_key: {file: empty.key}}
          w: {type: webhook, url: "http://h/", secret: sekrit-inline}
          e: {type: email, to: [a@example.com], from: a@example.com, smtp: "h:25",
              password: {env: NOT_SET}}
        routes:
          - escalation: [{on: breached, to: [s, nobody]}]
        """
    lines = problems(text, folder)
    assert [line.split(": ")[0:2] for line in lines] == [
        ["r.yaml:2", "receivers.s.webhook_url"],
        ["r.yaml:3", "receivers.pd.routing_key.file"],
        ["r.yaml:4", "receivers.w.secret"],
        ["r.yaml:6", "receivers.e.password.env"],
        ["r.yaml:8", "routes[0].escalation[0].to"],
    ]
    assert "file:empty.key is empty" in lines[1]
    for line in lines:
        assert "sekrit" not in line


def test_a_secret_file_must_be_a_small_regular_file(folder: Path) -> None:
    (folder / "big.key").write_bytes(b"x" * (64 * 1024 + 1))
    text = """\
        receivers:
          a: {type: webhook, url: "http://h/", secret: {file: big.key}}
          b: {type: webhook, url: "http://h/", secret: {file: /dev/zero}}
          c: {type: webhook, url: "http://h/", secret: {file: .}}
        routes: []
        """
    lines = problems(text, folder)
    assert lines == [
        f"r.yaml:2: receivers.a.secret.file: cannot read '{folder}/big.key': longer than "
        "65,536 bytes (hint: a path relative to the routing file, or absolute)",
        "r.yaml:3: receivers.b.secret.file: cannot read '/dev/zero': not a regular file "
        "(hint: a path relative to the routing file, or absolute)",
        f"r.yaml:4: receivers.c.secret.file: cannot read '{folder}': not a regular file "
        "(hint: a path relative to the routing file, or absolute)",
    ]


def test_secrets_are_read_from_env_and_files_relative_to_the_routing_file(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folder / "routing.yaml"
    path.write_text(EXAMPLE)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SLACK_URL)
    monkeypatch.setenv("SMTP_PASSWORD", "from-the-process")
    monkeypatch.chdir("/")
    config = load_routing(path)
    password = config.receivers["manager"].fields["password"]
    assert isinstance(password, Secret) and password.reveal() == "from-the-process"


def test_check_config_routing(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "routing.yaml"
    path.write_text(EXAMPLE)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", "--routing", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: valid; routing: 4 receivers, 2 routes, 4 steps\n"
    monkeypatch.delenv("SMTP_PASSWORD")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "sekrit-not-a-url")
    assert main(["check-config", "--routing", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:4: receivers.team-slack.webhook_url: the value of env:SLACK_WEBHOOK_URL is not "
        "an http(s) URL (hint: https://hooks.slack.com/services/...)",
        f"{path}:13: receivers.manager.password.env: the environment variable SMTP_PASSWORD is "
        "not set (hint: export SMTP_PASSWORD=... before starting slawatch)",
        f"slawatch: {path}: 2 problems",
    ]


def test_check_config_policy_and_routing_together(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "routing.yaml"
    path.write_text("receivers: {}\nroutes: []\n")
    policy = ROOT / "examples" / "policy.yaml"
    assert main(["check-config", str(policy), "--routing", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"{policy}: valid; policy ")
    assert out.splitlines()[1].startswith(f"{path}: valid; routing: 0 receivers")
    path.write_text("routes: []\n")
    assert main(["check-config", str(policy), "--routing", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{policy}: valid") and f"{path}:1: receivers: missing" in err


def test_check_config_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) != 0
    assert "give a policy file, --routing FILE, or both" in capsys.readouterr().err


def test_the_readmes_routing_example_loads(folder: Path) -> None:
    readme = README.read_text()
    section = readme.split("## Alert routing\n", 1)[1].split("\n## ", 1)[0]
    assert "check-config --routing" in section
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_routing(example, "README.md", env={**ENV, "HOOK_SECRET": "s"}, base_dir=folder)
    assert config.summary() == "routing: 5 receivers, 2 routes, 4 steps"
