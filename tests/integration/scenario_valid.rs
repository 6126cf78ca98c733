//! Valid files: defaults, resolution of references, order, and the `to_toml` round trip.

use interop_sim::scenario::{self, Bound, Endpoint, FaultKind, HopClass, Latency, Role};

use crate::scenario_errors::valid;

#[test]
fn minimal_file_gets_every_default() {
    let s = valid("minimal.toml");
    assert_eq!(s.run.name, "minimal");
    assert_eq!(s.run.seed, 1);
    assert_eq!(s.run.duration_ns, 60_000_000_000);
    assert_eq!(s.run.drain_ns, 120_000_000_000);
    assert_eq!(s.run.interval_ns, 1_000_000_000);
    assert_eq!(s.run.events_max, 2_000_000_000);
    assert_eq!(s.providers.len(), 2);
    assert_eq!(
        (
            s.providers[0].devices_min,
            s.providers[0].devices_max,
            s.providers[0].opt_in
        ),
        (1, 1, 1.0)
    );
    let cs = s.network.link(HopClass::ClientServer);
    assert_eq!(
        cs.latency,
        Latency::Lognormal {
            median_ns: 60_000_000,
            p99_ns: 400_000_000
        }
    );
    assert_eq!(
        (
            cs.loss,
            cs.reorder_delay_ns,
            cs.bandwidth_bytes_per_s,
            cs.queue_max_bytes
        ),
        (0.0, 20_000_000, None, 67_108_864)
    );
    assert_eq!(
        s.network.link(HopClass::ServerGateway).latency,
        Latency::Normal {
            mean_ns: 8_000_000,
            stddev_ns: 2_000_000
        }
    );
    assert_eq!(
        s.network.link(HopClass::GatewayPartner).latency,
        Latency::Constant {
            value_ns: 25_000_000
        }
    );
    assert_eq!(
        s.network.link(HopClass::AdapterServer).latency,
        Latency::Constant {
            value_ns: 5_000_000
        }
    );
    assert_eq!(s.workload.content, [0.7, 0.15, 0.08, 0.04, 0.03]);
    assert_eq!(
        (s.workload.group_size_min, s.workload.group_size_max),
        (3, 32)
    );
    assert_eq!(s.capacity.gateway.rate_limit_per_partner, Some(20_000.0));
    assert_eq!(s.capacity.chat_server.rate_limit_per_partner, None);
    assert_eq!(s.devices.offline_ttl_ns, 30 * 86_400 * 1_000_000_000);
    assert!(s.faults.is_empty() && s.expect.is_empty());
}

#[test]
fn full_file_resolves_references_and_order() {
    let s = valid("full.toml");
    let names: Vec<&str> = s.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["whatsapp", "birdychat", "haiket"],
        "gatekeeper first, partners in file order"
    );
    assert_eq!(s.providers[0].role, Role::Gatekeeper);
    assert_eq!(
        (s.providers[1].devices_min, s.providers[1].devices_max),
        (1, 3)
    );
    assert_eq!(s.workload.content, [0.75, 0.25, 0.0, 0.0, 0.0]);
    assert_eq!(s.capacity.adapter.per_message_ns, 30_000);
    let table: Vec<(&str, u64, u64)> = s
        .e2ee
        .cost_table
        .iter()
        .map(|(op, c)| (op.key(), c.fixed_ns, c.per_kib_ns))
        .collect();
    assert_eq!(
        table,
        [
            ("ratchet_encrypt", 13_000, 16_000),
            ("ratchet_decrypt", 12_000, 7_000)
        ],
        "read from cost_tables/valid.toml, relative to the scenario file"
    );
    assert_eq!(
        s.e2ee.bundle_fetch_limit,
        Some(scenario::BundleFetchLimit {
            burst: 3,
            per_hour: 12.0
        })
    );
    assert_eq!(
        s.network.link(HopClass::GatewayPartner).latency,
        Latency::Uniform {
            min_ns: 10_000_000,
            max_ns: 1_500_000_000
        }
    );
    assert_eq!(
        s.faults[0].kind,
        FaultKind::Partition {
            a: Endpoint::Gateway,
            b: Endpoint::Clients(2),
            one_way: true
        }
    );
    assert_eq!(
        s.faults[2].kind,
        FaultKind::Slow {
            node: Endpoint::Provider(1),
            factor: 3.0
        }
    );
    assert_eq!(
        s.faults[4].kind,
        FaultKind::IdentityReset {
            provider: 0,
            users: 0.05
        }
    );
    let keys: Vec<&str> = s.expect.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "lost",
            "sent",
            "interop.delivered_p99",
            "delivered_ratio",
            "gateway.utilization_peak",
            // Written `delivered_per_s_mean`, its older name.
            "device_deliveries_per_s_mean",
            "native.delivered_max",
        ]
    );
    assert_eq!(s.expect[0].bound, Bound::AtMost(0.0));
    assert_eq!(s.expect[1].bound, Bound::AtLeast(1000.0));
    assert_eq!(s.expect[2].bound, Bound::AtMost(5e9));
    assert_eq!(s.expect[3].bound, Bound::AtLeast(0.99));
    assert_eq!(s.expect[6].bound, Bound::AtMost(60e9));
}

#[test]
fn to_toml_round_trips_and_hash_is_stable() {
    for name in ["minimal.toml", "contract.toml", "full.toml"] {
        let s = valid(name);
        let text = scenario::to_toml(&s);
        let back = scenario::parse(&text, "resolved.toml")
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(back, s, "{name} round trip:\n{text}");
        assert_eq!(scenario::to_toml(&back), text);
        let h = scenario::hash(&s);
        assert_eq!(h.len(), 16);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(scenario::hash(&back), h);
    }
    assert_ne!(
        scenario::hash(&valid("minimal.toml")),
        scenario::hash(&valid("full.toml"))
    );
}

#[test]
fn the_contract_example_parses() {
    let s = valid("contract.toml");
    assert_eq!(s.run.name, "partner-outage");
    assert_eq!(s.run.seed, 42);
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].end_ns(), Some(270_000_000_000));
    assert_eq!(s.expect.len(), 5);
}

mod round_trip {
    use interop_sim::scenario;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = String> {
        let units = ["ns", "us", "ms", "s", "m", "h", "d"];
        (
            1u64..100_000,
            0..units.len(),
            proptest::option::of(0u32..1000),
        )
            .prop_map(move |(n, u, frac)| match frac {
                Some(f) if u >= 2 => format!("{n}.{f:03}{}", units[u]),
                _ => format!("{n}{}", units[u]),
            })
    }

    fn latency() -> impl Strategy<Value = String> {
        prop_oneof![
            duration().prop_map(|v| format!("{{ dist = \"constant\", value = \"{v}\" }}")),
            (1u64..1000, 0u64..1000).prop_map(|(a, b)| {
                format!(
                    "{{ dist = \"uniform\", min = \"{a}ms\", max = \"{}ms\" }}",
                    a + b
                )
            }),
            (duration(), duration()).prop_map(|(m, s)| format!(
                "{{ dist = \"normal\", mean = \"{m}\", stddev = \"{s}\" }}"
            )),
            (1u64..1000, 1u64..1000).prop_map(|(m, d)| {
                format!(
                    "{{ dist = \"lognormal\", median = \"{m}us\", p99 = \"{}us\" }}",
                    m + d
                )
            }),
            (duration(), 0.01f64..10.0).prop_map(|(m, a)| format!(
                "{{ dist = \"pareto\", min = \"{m}\", alpha = {a:?} }}"
            )),
        ]
    }

    prop_compose! {
        fn scenario_text()(
            seed in 0u64..=i64::MAX as u64,
            drain in duration(),
            opt_in in 0.0f64..=1.0,
            devices in (1u8..=5, 0u8..=4),
            latencies in proptest::collection::vec(latency(), 4),
            loss in 0.0f64..=1.0,
            weights in proptest::collection::vec(0.0f64..100.0, 5),
            groups in (0.0f64..=1.0, 2u32..50, 0u32..50),
            fault_at in 0u64..3600,
            fault_for in proptest::option::of(1u64..3600),
            rate in 0.0f64..=1.0,
            lost in 0.0f64..1e9,
            p99 in duration(),
        ) -> String {
            let (dmin, dextra) = devices;
            let dmax = (dmin + dextra).min(5);
            let content = format!(
                "{{ text = {:?}, image = {:?}, voice = {:?}, video = {:?}, file = {:?} }}",
                weights[0] + 0.001, weights[1], weights[2], weights[3], weights[4]
            );
            let for_line = fault_for.map_or(String::new(), |f| format!("for = \"{f}s\"\n"));
            format!(
    "[run]\nseed = {seed}\nduration = \"1h\"\ndrain = \"{drain}\"\n\
    [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 3\nopt_in = {opt_in:?}\n\
    devices_per_user = {{ min = {dmin}, max = {dmax} }}\n\
    [[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 7\n\
    [network]\nclient_server = {{ latency = {}, loss = {loss:?} }}\nserver_gateway = {{ latency = {} }}\n\
    gateway_partner = {{ latency = {} }}\nadapter_server = {{ latency = {} }}\n\
    [workload]\ncontent = {content}\ngroups = {{ share = {:?}, size = {{ min = {}, max = {} }} }}\n\
    [[fault]]\nat = \"{fault_at}s\"\n{for_line}kind = \"replay\"\nlink = \"gateway_partner\"\nrate = {rate:?}\n\
    [[fault]]\nat = \"1s\"\nkind = \"partition\"\nbetween = [\"p-clients\", \"g\"]\n\
    [expect]\nlost = {lost:?}\ninterop.delivered_p99 = \"{p99}\"\ndelivered = {{ max = 5 }}\n",
                latencies[0], latencies[1], latencies[2], latencies[3],
                groups.0, groups.1, groups.1 + groups.2,
            )
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// `to_toml` writes back exactly what `parse` resolved, for any valid values.
        #[test]
        fn parse_to_toml_parse_is_identity(text in scenario_text()) {
            let s = match scenario::parse(&text, "generated.toml") {
                Ok(s) => s,
                // A fault window past the run end is a valid rejection of a generated file.
                Err(e) if e.iter().all(|p| p.key_path.starts_with("fault[0].")) => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
            };
            let written = scenario::to_toml(&s);
            let back = scenario::parse(&written, "written.toml")
                .map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
            prop_assert_eq!(&back, &s, "{}", written);
            prop_assert_eq!(scenario::hash(&back), scenario::hash(&s));
            let sum: f64 = s.workload.content.iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-9);
        }
    }
}
