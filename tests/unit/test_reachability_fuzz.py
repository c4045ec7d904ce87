"""Whatever evidence arrives (odd, contradictory, half-empty), the walk ends at a node of
the tree with ranked causes of the vocabulary, and the checklist has its eight steps."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostmedic.analysis.reach_observations import (
    Dns,
    Firewall,
    Hop,
    Http,
    Inside,
    Listener,
    Load,
    Observations,
    Path,
    Ping,
    Port,
    Vantage,
)
from hostmedic.analysis.reach_tree import CAUSES, tree_data
from hostmedic.analysis.reachability import checklist_of, walk

ADDRESSES = st.sampled_from(["203.0.113.10", "198.19.1.10", "198.51.100.2", "198.19.1.1", "::1"])
STATES = st.sampled_from(["open", "refused", "timeout", "unreachable", "local_block", "error"])
PAGES = st.lists(
    st.sampled_from(
        ["icp_filing", "waf_block", "green_net_block", "injected_ads", "isp_block", "ddos_block"]
    ),
    max_size=2,
)
pings = st.builds(Ping, ADDRESSES, st.integers(0, 20), st.integers(0, 20))
ports = st.lists(st.builds(Port, st.sampled_from([22, 80, 3306]), STATES), max_size=3)
https = st.lists(
    st.builds(
        Http,
        st.sampled_from(["http://www.shop.test/", "http://203.0.113.10/x"]),
        st.one_of(st.none(), st.sampled_from([200, 302, 403, 405, 502])),
        fingerprints=PAGES.map(tuple),
        body_sha256=st.sampled_from([None, "a", "b"]),
        redirect_hosts=st.lists(st.sampled_from(["www.shop.test", "beian.test"]), max_size=2).map(
            tuple
        ),
        scripts=st.lists(st.sampled_from(["/app.js", "inline:x"]), max_size=2).map(tuple),
    ),
    max_size=2,
)
hops = st.lists(
    st.builds(Hop, st.integers(1, 6), st.one_of(st.none(), ADDRESSES), st.floats(0, 100)),
    max_size=5,
).map(tuple)
paths = st.lists(
    st.builds(
        Path,
        ADDRESSES,
        st.sampled_from(["icmp", "tcp"]),
        hops,
        st.booleans(),
        st.sampled_from([None, 80, 3306]),
    ),
    max_size=2,
)
dns = st.lists(
    st.builds(
        Dns,
        st.just("www.shop.test"),
        st.dictionaries(
            st.sampled_from(["system", "203.0.113.53"]), st.lists(ADDRESSES, max_size=2).map(tuple)
        ),
    ),
    max_size=1,
)


def vantage(role: str) -> st.SearchStrategy[Vantage]:
    return st.builds(
        Vantage,
        st.sampled_from(["a", "b", "c"]),
        st.just(role),
        ADDRESSES,
        ping=st.one_of(st.none(), pings),
        ports=ports.map(tuple),
        http=https.map(tuple),
        paths=paths.map(tuple),
        dns=dns.map(tuple),
    )


insides = st.one_of(
    st.none(),
    st.builds(
        Inside,
        st.just("t"),
        st.lists(ADDRESSES, max_size=2).map(tuple),
        listeners=st.lists(
            st.builds(
                Listener,
                st.sampled_from([22, 80, 3306]),
                st.sampled_from(["0.0.0.0", "127.0.0.1", "::"]),
            ),
            max_size=3,
        ).map(tuple),
        loopback=st.dictionaries(st.sampled_from([22, 80, 3306]), st.booleans()),
        firewall=st.one_of(
            st.none(),
            st.builds(
                Firewall,
                st.booleans(),
                st.booleans(),
                st.lists(st.sampled_from([22, 80, 3306])).map(tuple),
            ),
        ),
        gateway=st.one_of(st.none(), ADDRESSES),
    ),
)
observations = st.builds(
    Observations,
    ADDRESSES,
    st.sampled_from(["private", "public"]),
    st.one_of(st.none(), vantage("client"), vantage("peer")),
    others=st.lists(st.one_of(vantage("client"), vantage("peer")), max_size=2).map(tuple),
    controls=st.lists(vantage("client"), max_size=1).map(tuple),
    target_inside=insides,
    source_inside=insides,
    load=st.one_of(st.none(), st.builds(Load, st.one_of(st.none(), st.booleans()))),
    console=st.dictionaries(
        st.sampled_from(["instance_state", "security_group"]),
        st.sampled_from(["running", "blocks", "allows", "locked"]),
    ),
    target_gateway=st.one_of(st.none(), ADDRESSES),
    from_target=st.lists(vantage("target"), max_size=1).map(tuple),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observations)
def test_any_evidence_gives_a_verdict_of_the_tree(obs):
    verdict = walk(obs)
    assert verdict.node in tree_data().trees[obs.access].nodes
    assert verdict.causes and all(c.id in CAUSES for c in verdict.causes)
    assert [c.rank for c in verdict.causes] == list(range(1, len(verdict.causes) + 1))
    assert verdict.complete or verdict.decide is not None
    assert [i.step for i in checklist_of(obs).items] == list(range(1, 9))
