"""The Drain template miner and its masking pre-step (lumen_otel.insights.drain).

The HDFS lines are written in the style of loghub's HDFS sample (He et al., ICWS 2017 and the
loghub benchmark use HDFS as their first data set); the expected templates are Drain's.
"""

from __future__ import annotations

import pytest

from lumen_otel.insights.drain import WILDCARD, Drain, is_parameter, mask, tokenize


def templates(drain: Drain) -> dict[str, int]:
    return {c.template: c.size for c in drain.clusters}


class TestMask:
    @pytest.mark.parametrize(
        ("message", "masked"),
        [
            ("connected to 10.0.0.1", "connected to <IP>"),
            ("peer 192.168.10.250:8080 closed", "peer <IP>:<NUM> closed"),
            ("request 6f9619ff-8b86-4011-b42d-00c04fc964ff done", "request <UUID> done"),
            ("Hex number 0xDEADBEAF", "Hex number <HEX>"),
            ("trace 0f8c7e524f6b4f3c9a512c0b7d5e9a11 span c7454eec90a60b59", "trace <HEX> span <HEX>"),
            ("lock bfaacfdf taken", "lock <HEX> taken"),  # a hex id that happens to hold no digit
            ("took 795ms, 12% of 5KB in 3s", "took <NUM>ms, <NUM>% of <NUM>KB in <NUM>s"),
            ("score 0.93 delta -7 study 1.2.840.113619", "score <NUM> delta <NUM> study <NUM>"),
            ("exam EX-1001 queued", "exam EX-<NUM> queued"),
            ("patient [REDACTED:NAME], MRN: [REDACTED:MRN]", "patient <NAME>, MRN: <MRN>"),
            ("patient_mrn=mrn:1a2b3c4d5e6f ack=AA", "patient_mrn=<MRN> ack=AA"),
            ("[REDACTED:IP]:58498 - GET /", "<IP>:<NUM> - GET /"),
        ],
    )
    def test_obvious_variables_become_named_parameters(self, message, masked):
        assert masked == mask(message)

    @pytest.mark.parametrize(
        "message",
        ["v2 api on ris7", "1st attempt", "MSG6C7934BBBE accepted", "Accepted DEFACED", "no digits here"],
    )
    def test_words_that_merely_hold_digits_are_left_to_drain(self, message):
        assert message == mask(message)

    def test_fixed_masks_and_keyed_pseudonyms_give_the_same_template(self):
        drain = Drain()
        a = drain.add_message("HL7 audit: message accepted patient_mrn=[REDACTED:MRN] ack=AA")
        b = drain.add_message("HL7 audit: message accepted patient_mrn=mrn:0123456789ab ack=AA")
        assert a is b
        assert "HL7 audit: message accepted patient_mrn=<MRN> ack=AA" == a.template

    def test_tokens_are_capped(self):
        assert 80 == len(tokenize(" ".join(["word"] * 500)))

    def test_parameters(self):
        assert is_parameter(WILDCARD)
        assert is_parameter("<NUM>")
        assert not is_parameter("<")
        assert not is_parameter("a<b>")


HDFS = [
    "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
    "Receiving block blk_-5224465386785082826 src: /10.251.111.130:49851 dest: /10.251.111.130:50010",
    "Receiving block blk_7503483334202473044 src: /10.251.215.16:55695 dest: /10.251.215.16:50010",
    "PacketResponder 1 for block blk_38865049064139660 terminating",
    "PacketResponder 0 for block blk_-6952295868487656571 terminating",
    "PacketResponder 2 for block blk_8229193803249955061 terminating",
    "BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to "
    "blk_7128370237687728475 size 67108864",
    "BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.250.11.85:50010 is added to "
    "blk_-3544583377289625738 size 67108864",
    "Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6",
    "Received block blk_-5224465386785082826 of size 67108864 from /10.251.111.130",
    "Verification succeeded for blk_-4980916519894289629",
    "Verification succeeded for blk_7503483334202473044",
    "BLOCK* NameSystem.allocateBlock: /mnt/hadoop/mapred/system/job_200811092030_0001/job.jar. "
    "blk_-1608999687919862906",
    "BLOCK* NameSystem.allocateBlock: /mnt/hadoop/mapred/system/job_200811092030_0002/job.split. "
    "blk_7503483334202473044",
]


class TestDrainOnHdfs:
    def test_hdfs_lines_give_drains_templates(self):
        drain = Drain()
        for line in HDFS:
            drain.add_message(line)
        assert {
            "Receiving block <*> src: /<IP>:<NUM> dest: /<IP>:<NUM>": 3,
            "PacketResponder <NUM> for block <*> terminating": 3,
            "BLOCK* NameSystem.addStoredBlock: blockMap updated: <IP>:<NUM> is added to <*> size <NUM>": 2,
            "Received block blk_-<NUM> of size <NUM> from /<IP>": 2,
            "Verification succeeded for <*>": 2,
            "BLOCK* NameSystem.allocateBlock: <*> <*>": 2,
        } == templates(drain)

    def test_the_order_of_lines_does_not_change_the_templates_here(self):
        forward, backward = Drain(), Drain()
        for line in HDFS:
            forward.add_message(line)
        for line in reversed(HDFS):
            backward.add_message(line)
        assert templates(forward) == templates(backward)


class TestDrainTree:
    def test_the_drain3_readme_example(self):
        drain = Drain()
        for line in (
            "connected to 10.0.0.1",
            "connected to 192.168.0.1",
            "Hex number 0xDEADBEAF",
            "user davidoh logged in",
            "user eranr logged in",
        ):
            drain.add_message(line)
        assert {"connected to <IP>": 2, "Hex number <HEX>": 1, "user <*> logged in": 2} == templates(drain)

    def test_messages_of_different_lengths_never_share_a_template(self):
        drain = Drain()
        a = drain.add(["job", "started"])
        b = drain.add(["job", "started", "late"])
        assert a is not b

    def test_below_the_similarity_threshold_a_new_template_starts(self):
        drain = Drain(sim_threshold=0.5)
        a = drain.add(["disk", "full", "on", "sda"])
        b = drain.add(["disk", "mounted", "at", "boot"])  # 1 of 4 tokens alike: 0.25 < 0.5
        c = drain.add(["disk", "full", "on", "sdb"])  # 3 of 4 alike
        assert a is c
        assert a is not b
        assert ["disk", "full", "on", WILDCARD] == list(a.tokens)

    def test_a_first_token_with_digits_goes_down_the_wildcard_branch(self):
        drain = Drain()
        a = drain.add(["42", "items", "left"])
        b = drain.add(["7", "items", "left"])
        assert a is b
        assert (WILDCARD, "items", "left") == a.tokens

    def test_an_unknown_first_token_can_still_match_under_the_wildcard(self):
        """As in Drain3: search follows <*> when the token has no node of its own."""
        drain = Drain()
        a = drain.add(["123", "x", "y"])
        b = drain.add(["foo", "x", "y"])
        assert a is b
        assert "<*> x y" == a.template

    def test_ties_go_to_the_template_with_more_parameters(self):
        drain = Drain(sim_threshold=0.3, max_children=2)
        general = drain.add(["a", "b", "c", "d"])
        drain.add(["a", "b", "x", "y"])  # joins: "a b <*> <*>"
        assert "a b <*> <*>" == general.template

    def test_max_children_bounds_the_tree(self):
        drain = Drain(max_children=3)
        for word in ("alpha", "beta", "gamma", "delta", "epsilon"):
            drain.add([word, "service", "ready"])
        roots = list(drain._roots.values())
        assert 1 == len(roots)
        assert len(roots[0].children) <= 3
        assert WILDCARD in roots[0].children
        # the words past the limit share the <*> branch, and so one template
        assert "<*> service ready" in templates(drain)

    def test_empty_messages_share_one_template(self):
        drain = Drain()
        assert drain.add_message("") is drain.add_message("   ")

    def test_groups_are_mined_apart(self):
        drain = Drain()
        a = drain.add_message("request done", group="api\x1fINFO")
        b = drain.add_message("request done", group="worker\x1fINFO")
        assert a is not b
        assert (1, 1) == (a.size, b.size)

    def test_invalid_parameters_are_refused(self):
        with pytest.raises(ValueError, match="depth"):
            Drain(depth=2)
        with pytest.raises(ValueError, match="sim_threshold"):
            Drain(sim_threshold=1.5)
        with pytest.raises(ValueError, match="max_children"):
            Drain(max_children=1)


class TestBoundedMemory:
    def test_clusters_are_capped_and_the_least_recently_matched_is_evicted(self):
        evicted = []
        drain = Drain(max_clusters=3, on_evict=evicted.append)
        first = drain.add_message("alpha one two")
        drain.add_message("beta one two three")
        drain.add_message("gamma one two three four")
        drain.add_message("alpha one two")  # first is now the most recently matched
        drain.add_message("delta a b c d e")  # evicts beta
        assert 3 == len(drain)
        assert ["beta one two three"] == [c.template for c in evicted]
        assert 1 == drain.evicted
        assert first.alive
        assert 2 == first.size

    def test_the_cache_never_returns_an_evicted_cluster(self):
        drain = Drain(max_clusters=1)
        old = drain.add_message("alpha one")
        drain.add_message("beta one two")  # evicts alpha
        again = drain.add_message("alpha one")
        assert not old.alive
        assert again is not old
        assert again.alive
        assert 1 == len(drain)

    def test_a_million_distinct_ids_make_one_template_not_a_million(self):
        """Bounded loop: 20,000 lines, each with a new id; memory stays with the template."""
        drain = Drain(max_clusters=50, cache_size=100)
        for i in range(20_000):
            drain.add_message(f"session {i:08x}{i} opened for user {i}")
        assert {"session <*> opened for user <NUM>": 20_000} == templates(drain)
        assert len(drain._cache) <= 100

    def test_repeated_messages_count_through_the_cache(self):
        drain = Drain()
        for _ in range(1000):
            cluster = drain.add_message("heartbeat ok")
        assert 1000 == cluster.size
        assert 1 == len(drain)
