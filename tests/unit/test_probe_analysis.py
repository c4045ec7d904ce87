"""Pure analysis of probe results: block-page fingerprints on recorded responses, page
summaries on hostile HTML, reachability and comparisons, ping and path statistics."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.analysis.compare import Problem, dns_disagreements, page_differences, reachability
from hostmedic.analysis.fingerprints import (
    KINDS,
    PageView,
    block_pages,
    kind_of,
    match_page,
    parse_block_pages,
)
from hostmedic.cli_probe import overall
from hostmedic.errors import ParseError
from hostmedic.facts.network import Vantage
from hostmedic.facts.probe import (
    DnsAnswer,
    HttpHop,
    HttpResult,
    Observation,
    PingResult,
    TargetName,
    TcpAttempt,
    summarize_attempts,
)
from hostmedic.probes.html import decode_body, page_summary
from hostmedic.probes.path import LOST, REACHED, UNREACHABLE, PathEcho, hop_stats
from hostmedic.probes.ping import latency_stats

FIXTURES = Path(__file__).parents[1] / "fixtures" / "probe"


def recorded(name: str, urls: tuple[str, ...] = ("http://203.0.113.10/",)) -> PageView:
    """A PageView of a response recorded with ``curl -i`` in the lab."""
    raw = (FIXTURES / f"http_{name}.txt").read_bytes().replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    status = int(lines[0].split()[1])
    headers = tuple(
        (k.lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])
    )
    text = decode_body(body, dict(headers).get("content-type"))
    title, _scripts = page_summary(text)
    hosts = tuple(u.split("/")[2].split(":")[0] for u in urls)
    return PageView(status, headers, (), text, len(body), title, urls, hosts)


def test_recorded_block_pages_are_recognized():
    assert match_page(recorded("beian")) == ("icp.aliyun",)
    assert match_page(recorded("waf")) == ("waf.aliyun",)
    assert match_page(recorded("inject")) == ("injection.script_after_html",)
    assert match_page(recorded("site")) == ()


def test_tencent_filing_redirect_is_recognized_by_its_url():
    view = PageView(
        200,
        (),
        (),
        "<html>…</html>",
        14,
        None,
        (
            "http://www.example.test/",
            "https://dnspod.qcloud.com/static/webblock.html?d=www.example.test",
        ),
        ("www.example.test", "dnspod.qcloud.com"),
    )
    assert match_page(view) == ("icp.tencent",)


def test_a_chinese_site_footer_is_not_a_filing_notice():
    footer = (
        "<html><body>" + "正文" * 20000 + "<footer>京ICP备12345678号 备案</footer></body></html>"
    )
    view = PageView(200, (), (), footer, len(footer.encode()), None, ("http://x/",), ("x",))
    assert match_page(view) == ()


def test_every_entry_compiles_and_has_a_known_kind():
    pages = block_pages()
    assert len({p.page_id for p in pages}) == len(pages)
    assert {p.kind for p in pages} <= set(KINDS)
    assert kind_of("icp.aliyun") == "icp_filing" and kind_of("nope") is None


@pytest.mark.parametrize(
    "text",
    [
        '[[page]]\nid="x"\nkind="nonsense"\n',
        '[[page]]\nid="x"\nkind="waf_block"\nall=["bogus:1"]\n',
        '[[page]]\nid="x"\nkind="waf_block"\nall=["body=~("]\n',
        "not toml [",
        '[[page]]\nkind="waf_block"\n',
    ],
)
def test_bad_fingerprint_data_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_block_pages(text)


def test_page_summary_titles_scripts_and_inline_hashes():
    title, scripts = page_summary(
        "<html><head><title> A \n title </title><script src='//cdn.test/a.js'></script>"
        "<script>var x = 1;</script><script> </script></head></html>"
    )
    assert (
        title == "A title" and scripts[0] == "//cdn.test/a.js" and scripts[1].startswith("inline:")
    )
    assert len(scripts) == 2


def test_decode_body_charsets():
    assert decode_body("备案".encode("gb18030"), "text/html; charset=gbk") == "备案"
    assert decode_body('<meta charset="gb2312">备'.encode("gb18030"), None).endswith("备")
    assert decode_body(b"\xff\xfe\xfa", None)  # undecodable bytes still give text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_hostile_html_never_crashes(text):
    title, scripts = page_summary("<![if " + text + "<script>" + text)
    assert title is None or isinstance(title, str)
    assert isinstance(scripts, tuple)


# --- reachability and comparisons -----------------------------------------------------------

V = Vantage("cli", ("198.51.100.2",), "client", 1700000000.0)


def observation(**kw) -> Observation:
    return Observation(
        vantage=kw.pop("vantage", V),
        target=TargetName("www.lab.test", ("203.0.113.10",), "203.0.113.10"),
        **kw,
    )


def test_reachability_levels():
    ping_ok = PingResult("203.0.113.10", 5, 5, 0.0)
    lossy = PingResult("203.0.113.10", 5, 3, 40.0)
    open80 = summarize_attempts("203.0.113.10", 80, (TcpAttempt("open", 1.0),))
    closed = summarize_attempts("203.0.113.10", 81, (TcpAttempt("timeout"),))
    assert reachability(observation(ping=ping_ok, ports=(open80,))).status == "reachable"
    assert reachability(observation(ping=lossy, ports=(open80,))).problems == (
        Problem("ping", "203.0.113.10", "loss", "40"),
    )
    assert reachability(observation(ping=ping_ok, ports=(closed,))).status == "partial"
    dead = Observation(
        V,
        TargetName("203.0.113.10", ("203.0.113.10",), "203.0.113.10"),
        PingResult("203.0.113.10", 5, 0, 100.0),
        (closed,),
    )
    assert reachability(dead).status == "unreachable"
    nxdomain = Observation(V, TargetName("nope.test", (), None, "NXDOMAIN"))
    assert reachability(nxdomain).problems == (
        Problem("target", "nope.test", "unresolved", "NXDOMAIN"),
    )
    blocked = HttpResult("http://www.lab.test/", 403, fingerprints=("icp.aliyun",))
    assert reachability(observation(http=(blocked,))).status == "partial"  # the name resolved


def test_dns_hijack_and_overall_status():
    answers = (
        DnsAnswer("www.lab.test", "system", "A", ("198.51.100.66",), "NOERROR"),
        DnsAnswer("www.lab.test", "203.0.113.10", "A", ("203.0.113.10",), "NOERROR"),
        DnsAnswer("www.lab.test", "203.0.113.11", "A", (), "TIMEOUT"),
    )
    obs = observation(dns=answers)
    (d,) = dns_disagreements([obs])
    assert (d.system, d.resolver, d.answers) == (
        ("198.51.100.66",),
        "203.0.113.10",
        ("203.0.113.10",),
    )
    healthy = observation(ping=PingResult("203.0.113.10", 5, 5, 0.0))
    assert overall([healthy, healthy]).status == "reachable"
    assert overall([healthy, obs]).status == "partial"
    inside_only = Observation(Vantage("srv", (), "target", 0.0))
    assert overall([inside_only]).status == "reachable"


def test_injected_script_shows_as_a_page_difference():
    inside = Observation(
        Vantage("srv", (), "target", 0.0),
        http=(
            HttpResult("http://127.0.0.1/index.html", 200, body_sha256="a", scripts=("/app.js",)),
        ),
    )
    client = observation(
        http=(
            HttpResult(
                "http://www.lab.test/index.html",
                200,
                body_sha256="b",
                scripts=("/app.js", "http://198.51.100.66/ad.js"),
            ),
        )
    )
    (diff,) = page_differences([client, inside])
    assert diff.added == ("http://198.51.100.66/ad.js",) and diff.removed == ()
    same = observation(http=(HttpResult("http://x/index.html", 200, body_sha256="a"),))
    assert page_differences([same, inside]) == []


def test_port_summary_keeps_the_icmp_sender():
    result = summarize_attempts(
        "203.0.113.10",
        80,
        (
            TcpAttempt(
                "unreachable", 0.1, "EHOSTUNREACH unreachable/admin_prohibited from 198.51.100.1"
            ),
        ),
    )
    assert result.state == "unreachable" and "198.51.100.1" in (result.attempts[0].detail or "")


def test_latency_statistics_like_iputils():
    assert latency_stats([]) is None
    assert latency_stats([1.0, 2.0, 3.0]) == (1.0, 2.0, 3.0, 0.816)


def test_hop_statistics_like_mtr():
    echoes = [
        PathEcho(REACHED, "203.0.113.10", 2.0),
        PathEcho(LOST),
        PathEcho(REACHED, "203.0.113.10", 4.0),
    ]
    hop = hop_stats(2, echoes, end=2)
    assert (
        hop.sent,
        hop.received,
        hop.loss_pct,
        hop.best_ms,
        hop.worst_ms,
        hop.avg_ms,
        hop.reached,
    ) == (3, 2, 33.3, 2.0, 4.0, 3.0, True)
    assert hop.stdev_ms == 1.414
    silent = hop_stats(3, [PathEcho(LOST)] * 4, end=None)
    assert (silent.address, silent.loss_pct, silent.avg_ms) == (None, 100.0, None)
    filtered = hop_stats(2, [PathEcho(UNREACHABLE, "198.51.100.1", 0.3, "admin_prohibited")], end=2)
    assert (filtered.unreachable, filtered.reached) == ("admin_prohibited", False)


def test_redirect_hops_round_trip_in_results():
    hop = HttpHop("http://a/", 302, "http://b/", "a")
    assert HttpResult("http://a/", 200, redirects=(hop,)).redirects[0].host == "a"
