//! Fleet indexing through the real `aws-sdk-iot` client: off until configured, the
//! indexing configuration per account and region, SearchIndex's query subset and pages,
//! connectivity from seeds and from `set_connectivity`, and the refusals.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iot::types::{
    ThingConnectivityIndexingMode, ThingGroupIndexingConfiguration, ThingGroupIndexingMode,
    ThingIndexingConfiguration, ThingIndexingMode,
};
use common::*;
use iot_sim::{
    Connectivity, ConnectivityChange, DenyRule, Seed, SeedIndexing, SeedThing, SeedThingGroup,
    SeedThingType, SimConfig, SimHandle, Simulator,
};

/// Things `dev-000` .. `dev-{n-1}`: even ones are sensors, every third is in `hall`,
/// attribute `fw` is `1.N%3`.
fn fleet(n: usize, indexing: Option<SeedIndexing>) -> Seed {
    let mut seed = seed_of(vec![(A, vec![])]);
    let a = seed.accounts.get_mut(A).unwrap();
    a.thing_types = vec![SeedThingType {
        name: "sensor".into(),
        ..Default::default()
    }];
    a.thing_groups = vec![SeedThingGroup {
        name: "hall".into(),
        ..Default::default()
    }];
    a.things = (0..n)
        .map(|i| SeedThing {
            name: format!("dev-{i:03}"),
            thing_type: (i % 2 == 0).then(|| "sensor".to_string()),
            attributes: BTreeMap::from([("fw".to_string(), format!("1.{}", i % 3))]),
            groups: if i % 3 == 0 {
                vec!["hall".into()]
            } else {
                vec![]
            },
        })
        .collect();
    a.indexing = indexing;
    seed
}

fn spawn(seed: Seed) -> SimHandle {
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed);
    Simulator::spawn(config).unwrap()
}

fn registry_on() -> SeedIndexing {
    SeedIndexing {
        thing_indexing_mode: Some("REGISTRY".into()),
        ..Default::default()
    }
}

/// Every thing name the query matches, following nextToken with pages of `size`; and how
/// many pages it took.
async fn search_all(
    client: &aws_sdk_iot::Client,
    query: &str,
    size: i32,
) -> (BTreeSet<String>, usize) {
    let mut names = BTreeSet::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let out = client
            .search_index()
            .index_name("AWS_Things")
            .query_string(query)
            .max_results(size)
            .set_next_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{query}: {e:?}"));
        pages += 1;
        let things = out.things.expect("a page lists its things");
        assert!(things.len() <= size as usize);
        for t in things {
            assert!(names.insert(t.thing_name.unwrap()), "a thing on two pages");
        }
        match out.next_token {
            Some(t) => token = Some(t),
            None => return (names, pages),
        }
    }
}

fn names(range: impl Iterator<Item = usize>) -> BTreeSet<String> {
    range.map(|i| format!("dev-{i:03}")).collect()
}

#[tokio::test]
async fn indexing_is_off_until_configured_and_per_account_and_region() {
    let sim = spawn(fleet(5, None));
    let a = iot(&sim.url(), A);
    let conf = a.get_indexing_configuration().send().await.unwrap();
    let things = conf.thing_indexing_configuration.unwrap();
    assert_eq!(things.thing_indexing_mode, ThingIndexingMode::Off);
    assert_eq!(
        conf.thing_group_indexing_configuration
            .unwrap()
            .thing_group_indexing_mode,
        ThingGroupIndexingMode::Off
    );
    let off = a.search_index().query_string("thingName:*").send().await;
    assert_err!(off, "ResourceNotFoundException", 404);

    // Connectivity needs thing indexing.
    let refused = a
        .update_indexing_configuration()
        .thing_indexing_configuration(
            ThingIndexingConfiguration::builder()
                .thing_indexing_mode(ThingIndexingMode::Off)
                .thing_connectivity_indexing_mode(ThingConnectivityIndexingMode::Status)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_err!(refused, "InvalidRequestException", 400);

    a.update_indexing_configuration()
        .thing_indexing_configuration(
            ThingIndexingConfiguration::builder()
                .thing_indexing_mode(ThingIndexingMode::Registry)
                .thing_connectivity_indexing_mode(ThingConnectivityIndexingMode::Status)
                .build()
                .unwrap(),
        )
        .thing_group_indexing_configuration(
            ThingGroupIndexingConfiguration::builder()
                .thing_group_indexing_mode(ThingGroupIndexingMode::On)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let conf = a.get_indexing_configuration().send().await.unwrap();
    let things = conf.thing_indexing_configuration.unwrap();
    assert_eq!(things.thing_indexing_mode, ThingIndexingMode::Registry);
    assert_eq!(
        things.thing_connectivity_indexing_mode,
        Some(ThingConnectivityIndexingMode::Status)
    );
    let managed: Vec<&str> = things
        .managed_fields()
        .iter()
        .filter_map(|f| f.name())
        .collect();
    assert!(managed.contains(&"connectivity.connected"), "{managed:?}");
    let (all, _) = search_all(&a, "*", 100).await;
    assert_eq!(all, names(0..5));

    // Another account, and the same account in another region, are still off.
    let b = iot(&sim.url(), B);
    assert_err!(
        b.search_index().query_string("*").send().await,
        "ResourceNotFoundException",
        404
    );
    let west = iot_in(&sim.url(), A, "eu-west-1");
    assert_err!(
        west.search_index().query_string("*").send().await,
        "ResourceNotFoundException",
        404
    );
    // Only AWS_Things is searchable here; an index that does not exist is 404.
    assert_err!(
        a.search_index()
            .index_name("AWS_Nothing")
            .query_string("*")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
}

#[tokio::test]
async fn search_pages_through_every_match_of_each_query_form() {
    let sim = spawn(fleet(250, Some(registry_on())));
    let a = iot(&sim.url(), A);
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("thingName:dev-1*", names(100..200)),
        ("thingName:DEV-00?", names(0..10)),
        (
            "thingTypeName:sensor",
            names((0..250).filter(|i| i % 2 == 0)),
        ),
        (
            "NOT thingTypeName:*",
            names((0..250).filter(|i| i % 2 == 1)),
        ),
        (
            "thingGroupNames:hall",
            names((0..250).filter(|i| i % 3 == 0)),
        ),
        ("attributes.fw:1.2", names((0..250).filter(|i| i % 3 == 2))),
        (
            "thingTypeName:sensor AND attributes.fw:1.1",
            names((0..250).filter(|i| i % 2 == 0 && i % 3 == 1)),
        ),
        (
            "(thingGroupNames:hall OR attributes.fw:1.1) -thingTypeName:sensor",
            names((0..250).filter(|i| i % 3 != 2 && i % 2 == 1)),
        ),
        ("*", names(0..250)),
    ];
    for (query, expected) in cases {
        let (got, pages) = search_all(&a, query, 100).await;
        assert_eq!(got, expected, "{query}");
        assert_eq!(pages, expected.len().div_ceil(100).max(1), "{query}");
    }
    // Without maxResults a page holds at most 25.
    let out = a.search_index().query_string("*").send().await.unwrap();
    assert_eq!(out.things().len(), 25);
    assert!(out.next_token.is_some());
}

#[tokio::test]
async fn connectivity_shows_only_when_indexed_and_follows_the_devices() {
    let sim = spawn(fleet(4, Some(registry_on())));
    let a = iot(&sim.url(), A);
    let connect = |thing: &str, connected: bool| ConnectivityChange {
        account: A.into(),
        region: REGION.into(),
        thing: thing.into(),
        connected,
        timestamp: None,
        disconnect_reason: None,
    };
    sim.set_connectivity(&connect("dev-001", true)).unwrap();
    sim.set_connectivity(&connect("dev-002", false)).unwrap();
    // Not indexed: the field is absent, so neither value matches.
    let (none, _) = search_all(&a, "connectivity.connected:false", 100).await;
    assert!(none.is_empty());
    let out = a.search_index().query_string("*").send().await.unwrap();
    assert!(out.things().iter().all(|t| t.connectivity.is_none()));

    sim.seed(fleet(
        4,
        Some(SeedIndexing {
            thing_indexing_mode: Some("REGISTRY".into()),
            thing_connectivity_indexing_mode: Some("STATUS".into()),
            connectivity: BTreeMap::from([(
                "dev-003".to_string(),
                Connectivity {
                    connected: false,
                    timestamp: Some(1_556_649_874_716),
                    disconnect_reason: Some("CONNECTION_LOST".into()),
                },
            )]),
            ..Default::default()
        }),
    ))
    .unwrap();
    let (on, _) = search_all(&a, "connectivity.connected:true", 100).await;
    assert_eq!(on, names(1..2));
    // Never connected (dev-000) reads false, like those that disconnected.
    let (off, _) = search_all(&a, "connectivity.connected:false", 100).await;
    assert_eq!(off, names([0, 2, 3].into_iter()));
    let out = a
        .search_index()
        .query_string("thingName:dev-003 OR thingName:dev-000")
        .send()
        .await
        .unwrap();
    let by_name: BTreeMap<String, _> = out
        .things
        .unwrap()
        .into_iter()
        .map(|t| (t.thing_name.clone().unwrap(), t.connectivity.unwrap()))
        .collect();
    let lost = &by_name["dev-003"];
    assert_eq!(lost.connected, Some(false));
    assert_eq!(lost.timestamp, Some(1_556_649_874_716));
    assert_eq!(lost.disconnect_reason.as_deref(), Some("CONNECTION_LOST"));
    let never = &by_name["dev-000"];
    assert_eq!(never.connected, Some(false));
    assert_eq!(
        (never.timestamp, never.disconnect_reason.as_deref()),
        (None, None)
    );

    // dev-001 goes offline: the next query sees it.
    sim.set_connectivity(&connect("dev-001", false)).unwrap();
    let (on, _) = search_all(&a, "connectivity.connected:true", 100).await;
    assert!(on.is_empty());
    let bad = ConnectivityChange {
        disconnect_reason: Some("BORED".into()),
        ..connect("dev-001", false)
    };
    assert!(sim.set_connectivity(&bad).unwrap_err().contains("BORED"));
}

#[tokio::test]
async fn refused_queries_pages_and_a_building_index() {
    let sim = spawn(fleet(3, Some(registry_on())));
    let a = iot(&sim.url(), A);
    for query in [
        "dev-001",
        "shadow.reported.x:1",
        "thingName:(a OR b)",
        "thingName:a AND",
    ] {
        let refused = a.search_index().query_string(query).send().await;
        assert_err!(refused, "InvalidQueryException", 400);
    }
    let too_big = a
        .search_index()
        .query_string("*")
        .max_results(101)
        .send()
        .await;
    assert_err!(too_big, "InvalidRequestException", 400);
    let bad_token = a
        .search_index()
        .query_string("*")
        .next_token("not-a-token")
        .send()
        .await;
    assert_err!(bad_token, "InvalidRequestException", 400);

    // The deny rules name the index's ARN.
    sim.add_deny(DenyRule {
        account: A.into(),
        operation: "SearchIndex".into(),
        resource: Some(format!("arn:aws:iot:{REGION}:{A}:index/AWS_Things")),
    })
    .unwrap();
    assert_err!(
        a.search_index().query_string("*").send().await,
        "AccessDeniedException",
        403
    );

    let building = spawn(fleet(
        3,
        Some(SeedIndexing {
            index_status: Some("BUILDING".into()),
            ..registry_on()
        }),
    ));
    let b = iot(&building.url(), A);
    assert_err!(
        b.search_index().query_string("*").send().await,
        "IndexNotReadyException",
        400
    );
    // Configuring it again builds it (at once, here).
    b.update_indexing_configuration()
        .thing_indexing_configuration(
            ThingIndexingConfiguration::builder()
                .thing_indexing_mode(ThingIndexingMode::Registry)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (all, _) = search_all(&b, "*", 10).await;
    assert_eq!(all.len(), 3);
    assert_eq!(building.stats().calls_of("SearchIndex"), 2);
}
