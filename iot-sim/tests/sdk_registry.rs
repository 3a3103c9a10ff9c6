//! The fleet registry (policies, things, thing types, thing groups, CA
//! certificates, the data endpoint), its seeds and limits, through the real
//! `aws-sdk-iot` client.

mod common;

use std::collections::BTreeMap;

use aws_sdk_iot::types::{AttributePayload, ThingGroupProperties, ThingTypeProperties};
use common::*;
use iot_sim::{
    Seed, SeedCaCertificate, SeedPolicy, SeedThing, SeedThingGroup, SeedThingType, SimConfig,
    SimHandle, Simulator,
};

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}"#;

fn spawn(seed: Seed) -> SimHandle {
    let mut config = SimConfig::unlimited();
    config.seeds.push(seed);
    Simulator::spawn(config).unwrap()
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn policies_create_get_list() {
    let mut seed = seed_of(vec![(A, vec![])]);
    seed.accounts.get_mut(A).unwrap().policies = (0..260)
        .map(|n| SeedPolicy {
            name: format!("bulk-{n:03}"),
            document: None,
        })
        .collect();
    let sim = spawn(seed);
    let a = iot(&sim.url(), A);

    let out = a
        .create_policy()
        .policy_name("device")
        .policy_document(DOC)
        .send()
        .await
        .unwrap();
    assert_eq!(out.policy_name(), Some("device"));
    assert_eq!(
        out.policy_arn(),
        Some(format!("arn:aws:iot:{REGION}:{A}:policy/device").as_str())
    );
    assert_eq!(out.policy_version_id(), Some("1"));
    assert_eq!(out.policy_document(), Some(DOC));
    let got = a.get_policy().policy_name("device").send().await.unwrap();
    assert_eq!(got.policy_document(), Some(DOC));
    assert_eq!(got.default_version_id(), Some("1"));
    assert!(got.creation_date().is_some() && got.generation_id().is_some());
    // a seeded policy without a document has the default one
    let bulk = a.get_policy().policy_name("bulk-000").send().await.unwrap();
    assert_eq!(
        bulk.policy_document(),
        Some(iot_sim::DEFAULT_POLICY_DOCUMENT)
    );

    assert_err!(
        a.create_policy()
            .policy_name("device")
            .policy_document(DOC)
            .send()
            .await,
        "ResourceAlreadyExistsException",
        409
    );
    assert_err!(
        a.create_policy()
            .policy_name("broken")
            .policy_document("not json")
            .send()
            .await,
        "MalformedPolicyException",
        400
    );
    assert_err!(
        a.get_policy().policy_name("nope").send().await,
        "ResourceNotFoundException",
        404
    );
    // another account has its own policies
    assert_err!(
        iot(&sim.url(), B)
            .get_policy()
            .policy_name("device")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );

    // 261 policies: two pages of at most 250, and the paginator
    let first = a.list_policies().page_size(250).send().await.unwrap();
    assert_eq!(first.policies().len(), 250);
    let second = a
        .list_policies()
        .page_size(250)
        .marker(first.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(second.policies().len(), 11);
    assert!(second.next_marker().is_none());
    let all: Vec<_> = a
        .list_policies()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 261);
    assert_eq!(all[0].policy_name(), Some("bulk-000"));
    assert_err!(
        a.list_policies().page_size(251).send().await,
        "InvalidRequestException",
        400
    );
}

#[tokio::test]
async fn things_types_and_filters() {
    let mut seed = seed_of(vec![(A, vec![cert(1, "ACTIVE"), cert(2, "ACTIVE")])]);
    {
        let acct = seed.accounts.get_mut(A).unwrap();
        acct.thing_types.push(SeedThingType {
            name: "sensor".into(),
            description: Some("a sensor".into()),
            searchable_attributes: vec!["site".into()],
            ..Default::default()
        });
        acct.things = (0..300)
            .map(|n| SeedThing {
                name: format!("dev-{n:03}"),
                thing_type: (n % 3 == 0).then(|| "sensor".to_string()),
                attributes: attrs(&[("site", if n % 2 == 0 { "north" } else { "south" })]),
                groups: vec![],
            })
            .collect();
        acct.certificates[0].things = vec!["dev-000".into(), "dev-001".into()];
        acct.certificates[1].things = vec!["dev-000".into()];
    }
    let sim = spawn(seed);
    let a = iot(&sim.url(), A);

    // CreateThing: idempotent for the same configuration, 409 for another
    let payload = AttributePayload::builder()
        .attributes("site", "east")
        .build();
    let made = a
        .create_thing()
        .thing_name("new-1")
        .thing_type_name("sensor")
        .attribute_payload(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        made.thing_arn(),
        Some(format!("arn:aws:iot:{REGION}:{A}:thing/new-1").as_str())
    );
    let again = a
        .create_thing()
        .thing_name("new-1")
        .thing_type_name("sensor")
        .attribute_payload(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(again.thing_id(), made.thing_id());
    assert_err!(
        a.create_thing()
            .thing_name("new-1")
            .attribute_payload(
                AttributePayload::builder()
                    .attributes("site", "west")
                    .build()
            )
            .send()
            .await,
        "ResourceAlreadyExistsException",
        409
    );
    assert_err!(
        a.create_thing()
            .thing_name("new-2")
            .thing_type_name("no-such-type")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        a.create_thing().thing_name("bad/name").send().await,
        "InvalidRequestException",
        400
    );

    let d = a.describe_thing().thing_name("new-1").send().await.unwrap();
    assert_eq!(d.thing_type_name(), Some("sensor"));
    assert_eq!(d.default_client_id(), Some("new-1"));
    assert_eq!(d.attributes().unwrap()["site"], "east");
    assert_eq!(d.version(), 1);
    assert_err!(
        a.describe_thing().thing_name("ghost").send().await,
        "ResourceNotFoundException",
        404
    );

    // ListThings: 301 things over pages of 250, and the filters
    let first = a.list_things().max_results(250).send().await.unwrap();
    assert_eq!(first.things().len(), 250);
    let rest = a
        .list_things()
        .max_results(250)
        .next_token(first.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.things().len(), 51);
    assert!(rest.next_token().is_none());
    let sensors: Vec<_> = a
        .list_things()
        .thing_type_name("sensor")
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(sensors.len(), 101);
    assert!(sensors
        .iter()
        .all(|t| t.thing_type_name() == Some("sensor")));
    let north: Vec<_> = a
        .list_things()
        .attribute_name("site")
        .attribute_value("north")
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(north.len(), 150);
    assert!(north
        .iter()
        .all(|t| t.attributes().unwrap()["site"] == "north"));
    let prefixed = a
        .list_things()
        .attribute_name("site")
        .attribute_value("ea")
        .use_prefix_attribute_value(true)
        .send()
        .await
        .unwrap();
    assert_eq!(prefixed.things().len(), 1);

    // ListThingPrincipals
    let p = a
        .list_thing_principals()
        .thing_name("dev-000")
        .send()
        .await
        .unwrap();
    let mut principals = p.principals().to_vec();
    principals.sort();
    assert_eq!(principals, vec![arn(A, &cert_id(1)), arn(A, &cert_id(2))]);
    let paged = a
        .list_thing_principals()
        .thing_name("dev-000")
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(paged.principals().len(), 1);
    assert!(paged.next_token().is_some());
    assert_err!(
        a.list_thing_principals().thing_name("ghost").send().await,
        "ResourceNotFoundException",
        404
    );

    // thing types
    let t = a
        .describe_thing_type()
        .thing_type_name("sensor")
        .send()
        .await
        .unwrap();
    let props = t.thing_type_properties().unwrap();
    assert_eq!(props.thing_type_description(), Some("a sensor"));
    assert_eq!(props.searchable_attributes(), ["site"]);
    assert!(!t.thing_type_metadata().unwrap().deprecated());
    let made = a
        .create_thing_type()
        .thing_type_name("gateway")
        .thing_type_properties(
            ThingTypeProperties::builder()
                .thing_type_description("a gateway")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        made.thing_type_arn(),
        Some(format!("arn:aws:iot:{REGION}:{A}:thingtype/gateway").as_str())
    );
    assert_err!(
        a.create_thing_type()
            .thing_type_name("gateway")
            .send()
            .await,
        "ResourceAlreadyExistsException",
        409
    );
    assert_err!(
        a.describe_thing_type()
            .thing_type_name("ghost")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
}

#[tokio::test]
async fn thing_groups_hierarchy_membership_and_policies() {
    let mut seed = seed_of(vec![(A, vec![])]);
    {
        let acct = seed.accounts.get_mut(A).unwrap();
        acct.policies.push(SeedPolicy {
            name: "fleet".into(),
            document: Some(DOC.into()),
        });
        acct.thing_groups = vec![
            SeedThingGroup {
                name: "root".into(),
                policies: vec!["fleet".into()],
                ..Default::default()
            },
            SeedThingGroup {
                name: "mid".into(),
                parent: Some("root".into()),
                policies: vec!["mid-policy".into()],
                ..Default::default()
            },
        ];
        acct.things = vec![SeedThing {
            name: "t-root".into(),
            groups: vec!["root".into()],
            ..Default::default()
        }];
    }
    let mut seed = with_registry(seed, A, &["leaf-policy"], &["t-leaf", "t-loose"]);
    seed.accounts
        .get_mut(A)
        .unwrap()
        .policies
        .extend((0..10).map(|n| SeedPolicy {
            name: format!("extra-{n}"),
            document: None,
        }));
    let sim = spawn(seed);
    let a = iot(&sim.url(), A);

    let leaf = a
        .create_thing_group()
        .thing_group_name("leaf")
        .parent_group_name("mid")
        .thing_group_properties(
            ThingGroupProperties::builder()
                .thing_group_description("the leaf")
                .attribute_payload(AttributePayload::builder().attributes("k", "v").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let leaf_arn = format!("arn:aws:iot:{REGION}:{A}:thinggroup/leaf");
    assert_eq!(leaf.thing_group_arn(), Some(leaf_arn.as_str()));
    assert_err!(
        a.create_thing_group()
            .thing_group_name("orphan")
            .parent_group_name("ghost")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        a.create_thing_group()
            .thing_group_name("leaf")
            .parent_group_name("root")
            .send()
            .await,
        "ResourceAlreadyExistsException",
        409
    );

    let d = a
        .describe_thing_group()
        .thing_group_name("leaf")
        .send()
        .await
        .unwrap();
    let meta = d.thing_group_metadata().unwrap();
    assert_eq!(meta.parent_group_name(), Some("mid"));
    let roots: Vec<_> = meta
        .root_to_parent_thing_groups()
        .iter()
        .map(|g| g.group_name().unwrap())
        .collect();
    assert_eq!(roots, vec!["root", "mid"]);
    assert_eq!(
        d.thing_group_properties()
            .unwrap()
            .thing_group_description(),
        Some("the leaf")
    );
    assert_err!(
        a.describe_thing_group()
            .thing_group_name("ghost")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );

    a.add_thing_to_thing_group()
        .thing_group_name("leaf")
        .thing_name("t-leaf")
        .send()
        .await
        .unwrap();
    a.add_thing_to_thing_group()
        .thing_group_arn(&leaf_arn)
        .thing_arn(format!("arn:aws:iot:{REGION}:{A}:thing/t-loose"))
        .send()
        .await
        .unwrap();
    assert_err!(
        a.add_thing_to_thing_group()
            .thing_group_name("leaf")
            .thing_name("ghost")
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    let groups = a
        .list_thing_groups_for_thing()
        .thing_name("t-leaf")
        .send()
        .await
        .unwrap();
    // the group and its parents, by name
    let listed: Vec<_> = groups
        .thing_groups()
        .iter()
        .map(|g| g.group_name().unwrap())
        .collect();
    assert_eq!(listed, ["leaf", "mid", "root"]);
    assert_eq!(
        groups.thing_groups()[0].group_arn(),
        Some(leaf_arn.as_str())
    );

    let direct = a
        .list_things_in_thing_group()
        .thing_group_name("root")
        .send()
        .await
        .unwrap();
    assert_eq!(direct.things(), ["t-root"]);
    let all = a
        .list_things_in_thing_group()
        .thing_group_name("root")
        .recursive(true)
        .send()
        .await
        .unwrap();
    assert_eq!(all.things(), ["t-leaf", "t-loose", "t-root"]);

    // policies on a thing group, inherited with recursive
    a.attach_policy()
        .policy_name("leaf-policy")
        .target(&leaf_arn)
        .send()
        .await
        .unwrap();
    let own = a
        .list_attached_policies()
        .target(&leaf_arn)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = own
        .policies()
        .iter()
        .map(|p| p.policy_name().unwrap())
        .collect();
    assert_eq!(names, vec!["leaf-policy"]);
    let inherited = a
        .list_attached_policies()
        .target(&leaf_arn)
        .recursive(true)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = inherited
        .policies()
        .iter()
        .map(|p| p.policy_name().unwrap())
        .collect();
    assert_eq!(names, vec!["fleet", "leaf-policy", "mid-policy"]);
    a.detach_policy()
        .policy_name("leaf-policy")
        .target(&leaf_arn)
        .send()
        .await
        .unwrap();
    assert_err!(
        a.attach_policy()
            .policy_name("ghost-policy")
            .target(&leaf_arn)
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    assert_err!(
        a.attach_policy()
            .policy_name("fleet")
            .target(format!("arn:aws:iot:{REGION}:{A}:thinggroup/ghost"))
            .send()
            .await,
        "ResourceNotFoundException",
        404
    );
    // the 11th policy on a group
    for n in 0..10 {
        a.attach_policy()
            .policy_name(format!("extra-{n}"))
            .target(&leaf_arn)
            .send()
            .await
            .unwrap();
    }
    assert_err!(
        a.attach_policy()
            .policy_name("fleet")
            .target(&leaf_arn)
            .send()
            .await,
        "LimitExceededException",
        410
    );

    // the registry is in the state dump
    let state = sim.state();
    let acct = state.account(A, REGION).unwrap();
    let leaf = acct.thing_groups.iter().find(|g| g.name == "leaf").unwrap();
    assert_eq!(leaf.parent.as_deref(), Some("mid"));
    assert_eq!(leaf.attributes, attrs(&[("k", "v")]));
    assert_eq!(leaf.policies.len(), 10);
    let t = acct.things.iter().find(|t| t.name == "t-leaf").unwrap();
    assert_eq!(t.groups, vec!["leaf"]);
    assert_eq!(
        acct.policies
            .iter()
            .find(|p| p.name == "fleet")
            .unwrap()
            .document,
        DOC
    );
}

#[tokio::test]
async fn a_thing_is_in_at_most_ten_groups() {
    let mut seed = seed_of(vec![(A, vec![])]);
    seed.accounts.get_mut(A).unwrap().thing_groups = (0..11)
        .map(|n| SeedThingGroup {
            name: format!("g{n}"),
            ..Default::default()
        })
        .collect();
    let sim = spawn(with_registry(seed, A, &[], &["t"]));
    let a = iot(&sim.url(), A);
    for n in 0..10 {
        a.add_thing_to_thing_group()
            .thing_group_name(format!("g{n}"))
            .thing_name("t")
            .send()
            .await
            .unwrap();
    }
    assert_err!(
        a.add_thing_to_thing_group()
            .thing_group_name("g10")
            .thing_name("t")
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    // adding it again to a group it is in is fine
    a.add_thing_to_thing_group()
        .thing_group_name("g0")
        .thing_name("t")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn ca_certificates_fields_and_endpoint() {
    let ca = "c".repeat(64);
    let mut with_ca = cert(1, "ACTIVE");
    with_ca.ca_certificate_id = Some(ca.clone());
    with_ca.creation_date = Some(1_600_000_000.0);
    with_ca.certificate_mode = Some("SNI_ONLY".into());
    let mut seed = seed_of(vec![
        (A, vec![with_ca, cert(2, "ACTIVE")]),
        (B, vec![cert(3, "ACTIVE")]),
    ]);
    seed.accounts.get_mut(A).unwrap().ca_certificates = vec![SeedCaCertificate {
        id: ca.clone(),
        ..Default::default()
    }];
    let sim = spawn(seed);
    let a = iot(&sim.url(), A);

    let by_ca = a
        .list_certificates_by_ca()
        .ca_certificate_id(&ca)
        .send()
        .await
        .unwrap();
    assert_eq!(by_ca.certificates().len(), 1);
    let c = &by_ca.certificates()[0];
    assert_eq!(c.certificate_id(), Some(cert_id(1).as_str()));
    assert_eq!(c.certificate_mode().map(|m| m.as_str()), Some("SNI_ONLY"));
    assert_eq!(c.creation_date().unwrap().secs(), 1_600_000_000);
    assert!(a
        .list_certificates_by_ca()
        .ca_certificate_id("d".repeat(64))
        .send()
        .await
        .unwrap()
        .certificates()
        .is_empty());
    assert_err!(
        a.list_certificates_by_ca()
            .ca_certificate_id("short")
            .send()
            .await,
        "InvalidRequestException",
        400
    );
    let d = a
        .describe_certificate()
        .certificate_id(cert_id(1))
        .send()
        .await
        .unwrap();
    let d = d.certificate_description().unwrap();
    assert_eq!(d.ca_certificate_id(), Some(ca.as_str()));
    assert_eq!(d.certificate_mode().map(|m| m.as_str()), Some("SNI_ONLY"));
    // ListCertificates carries mode and creation date, oldest first when asked
    let asc = a
        .list_certificates()
        .ascending_order(true)
        .send()
        .await
        .unwrap();
    let modes: Vec<_> = asc
        .certificates()
        .iter()
        .map(|c| c.certificate_mode().unwrap().as_str())
        .collect();
    assert_eq!(modes, vec!["SNI_ONLY", "DEFAULT"]);

    // one stable data endpoint per account and region
    let ep = |c: aws_sdk_iot::Client| async move {
        c.describe_endpoint()
            .endpoint_type("iot:Data-ATS")
            .send()
            .await
            .unwrap()
            .endpoint_address()
            .unwrap()
            .to_string()
    };
    let a1 = ep(iot(&sim.url(), A)).await;
    let a2 = ep(iot(&sim.url(), A)).await;
    let b1 = ep(iot(&sim.url(), B)).await;
    let eu = ep(iot_in(&sim.url(), A, "eu-west-1")).await;
    assert_eq!(a1, a2);
    assert_ne!(a1, b1);
    assert!(a1.ends_with("-ats.iot.us-east-1.amazonaws.com"), "{a1}");
    assert_eq!(
        eu,
        a1.replace("us-east-1", "eu-west-1"),
        "the prefix is the account's"
    );
    assert_err!(
        a.describe_endpoint().endpoint_type("iot:Nope").send().await,
        "InvalidRequestException",
        400
    );
}

#[tokio::test]
async fn seeds_with_a_registry_are_checked_as_a_whole() {
    let sim = spawn(seed_of(vec![(A, vec![cert(1, "ACTIVE")])]));
    let mut bad = seed_of(vec![(A, vec![cert(2, "ACTIVE")])]);
    bad.accounts.get_mut(A).unwrap().thing_groups = vec![SeedThingGroup {
        name: "child".into(),
        parent: Some("missing".into()),
        ..Default::default()
    }];
    assert!(sim.seed(bad).is_err());
    assert!(sim.state().find(&cert_id(2)).is_none());
    let mut bad = seed_of(vec![(A, vec![])]);
    bad.accounts.get_mut(A).unwrap().policies = vec![SeedPolicy {
        name: "p".into(),
        document: Some("{not json".into()),
    }];
    assert!(sim.seed(bad).is_err());
    let mut bad = seed_of(vec![(A, vec![])]);
    bad.accounts.get_mut(A).unwrap().things = vec![SeedThing {
        name: "t".into(),
        thing_type: Some("undeclared".into()),
        ..Default::default()
    }];
    assert!(sim.seed(bad).is_err());
    // names in a certificate's seed create the policy and the thing
    let mut c = cert(3, "INACTIVE");
    c.policies = vec!["implicit".into()];
    c.things = vec!["implicit-thing".into()];
    sim.seed(seed_of(vec![(A, vec![c])])).unwrap();
    let state = sim.state();
    let acct = state.account(A, REGION).unwrap();
    assert_eq!(acct.policies[0].name, "implicit");
    assert_eq!(acct.policies[0].document, iot_sim::DEFAULT_POLICY_DOCUMENT);
    assert_eq!(acct.things[0].name, "implicit-thing");
    assert!(acct.things[0].attributes.is_empty());
    assert_eq!(acct.things[0].principals, vec![arn(A, &cert_id(3))]);
    // the dump round-trips through JSON
    let json = serde_json::to_string(&state).unwrap();
    assert_eq!(
        serde_json::from_str::<iot_sim::StateDump>(&json).unwrap(),
        state
    );
}
