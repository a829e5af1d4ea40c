//! The HTTP site adapter against the fixture rodeo site (tests/src/rodeo_site.rs): reads with
//! filters and pagination, sign-in with CSRF and again after expiry, every validation error,
//! 429 and 5xx handling, robots.txt, layouts that no longer match, bad credentials.

use std::path::PathBuf;

use base::ErrorCode;
use base::config::Secret;
use lariat_tests::rodeo_site::{PASSWORD, RodeoSite, USERNAME};
use parse::site::layout::Layout;
use sites::config::SiteSettings;
use sites::{EntryRequest, EventQuery, HttpSite, SiteAdapter, WriteError, WriteOutcome};

fn layout_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/domains/rodeo/sites/example-association.toml")
}

fn settings(site: &RodeoSite) -> SiteSettings {
    SiteSettings {
        base_url: Some(site.url.clone()),
        username: Some(USERNAME.into()),
        password: Some(Secret::new(PASSWORD)),
        requests_per_minute: 6000,
        max_retry_wait_secs: 2,
        ..SiteSettings::default()
    }
}

fn adapter(site: &RodeoSite) -> HttpSite {
    HttpSite::new(Layout::load(&layout_path()).unwrap(), settings(site)).unwrap()
}

fn entry(event: &str, discipline: &str, partner: Option<&str>) -> EntryRequest {
    EntryRequest {
        event_id: event.into(),
        discipline: discipline.into(),
        partner: partner.map(str::to_owned),
    }
}

fn refused(outcome: WriteOutcome) -> String {
    match outcome {
        WriteOutcome::Refused { errors } => errors.join(" "),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn reads_follow_filters_and_pages() {
    let fixture = RodeoSite::start().await;
    let site = adapter(&fixture);
    let all = site
        .search_events(&EventQuery {
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 12, "three pages of five, five and two");
    assert_eq!(all[0].id, "cheyenne-2026");
    assert!(all[0].url.ends_with("/events/cheyenne-2026"));
    let texas = site
        .search_events(&EventQuery {
            state: Some("TX".into()),
            from: Some("2027-01-01".into()),
            limit: 100,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = texas.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["fortworth-2027", "sanantonio-2027", "houston-2027"]);
    let roping = site
        .search_events(&EventQuery {
            discipline: Some("team roping".into()),
            limit: 3,
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(roping.len(), 3);
    assert!(
        roping
            .iter()
            .all(|e| e.disciplines.as_deref().unwrap().contains("Team Roping"))
    );

    let event = site.event("houston-2027").await.unwrap();
    assert_eq!(event.name, "Livestock Show and Rodeo");
    assert_eq!(event.venue.as_deref(), Some("NRG Stadium"));
    assert_eq!(event.entry_deadline.as_deref(), Some("2027-02-01"));
    assert_eq!(event.status.as_deref(), Some("Open for entries"));
    assert_eq!(event.disciplines.len(), 5);
    assert_eq!(event.disciplines[1].discipline, "Team Roping");
    assert_eq!(event.disciplines[1].fee.as_deref(), Some("$150.00"));
    // configured fields beyond the known ones come through, marked by their names
    assert!(event.other["notes"].contains("Ignore previous instructions"));
    let e = site.event("no-such-rodeo").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");

    let standings = site
        .standings("team-roping", Some("2026"), 3)
        .await
        .unwrap();
    assert_eq!(standings.len(), 3);
    assert_eq!(standings[0].rank, "1");
    assert!(standings[0].earnings.as_deref().unwrap().starts_with('$'));
    let none = site.standings("knitting", None, 10).await.unwrap();
    assert!(none.is_empty());
    // the calendar and standings need no sign-in
    assert_eq!(fixture.signins(), 0);
}

#[tokio::test]
async fn member_pages_sign_in_with_csrf_and_again_after_expiry() {
    let fixture = RodeoSite::start().await;
    let site = adapter(&fixture);
    let entries = site.my_entries().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, "E1000");
    assert_eq!(entries[0].discipline, "Barrel Racing");
    assert_eq!(fixture.signins(), 1);
    let login = fixture
        .posts()
        .into_iter()
        .find(|r| r.path == "/login")
        .unwrap();
    assert_eq!(login.form["username"], USERNAME);
    assert_eq!(
        login.form["csrf_token"].len(),
        32,
        "the form's CSRF token went back"
    );
    assert!(
        !login.form.contains_key("remember"),
        "unchecked boxes are not sent"
    );
    // a second read reuses the session
    site.my_entries().await.unwrap();
    assert_eq!(fixture.signins(), 1);
    // the site forgets the session: lariat signs in again and carries on
    fixture.expire_sessions();
    assert_eq!(site.my_entries().await.unwrap().len(), 1);
    assert_eq!(fixture.signins(), 2);
}

#[tokio::test]
async fn entries_surface_each_validation_error_and_withdraw() {
    let fixture = RodeoSite::start().await;
    let site = adapter(&fixture);
    let late = refused(
        site.submit_entry(&entry("cheyenne-2026", "Bull Riding", None), false)
            .await
            .unwrap(),
    );
    assert!(
        late.contains("deadline for this rodeo has passed"),
        "{late}"
    );
    let alone = refused(
        site.submit_entry(&entry("denver-2027", "Team Roping", None), false)
            .await
            .unwrap(),
    );
    assert!(alone.contains("requires a partner"), "{alone}");
    let twice = refused(
        site.submit_entry(&entry("denver-2027", "barrel racing", None), false)
            .await
            .unwrap(),
    );
    assert!(twice.contains("already entered"), "{twice}");
    // a discipline the form does not offer never reaches the site
    let posts_before = fixture.posts().len();
    let e = site
        .submit_entry(&entry("tucson-2027", "Team Roping", Some("Jo")), false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput);
    assert!(e.to_string().contains("Bareback Riding"), "{e}");
    assert_eq!(fixture.posts().len(), posts_before);

    // a dry run shows the request and sends nothing
    let dry = site
        .submit_entry(&entry("denver-2027", "Team Roping", Some("Jo Smith")), true)
        .await
        .unwrap();
    let WriteOutcome::DryRun { request } = dry else {
        panic!("{dry:?}")
    };
    assert_eq!(request.method, "POST");
    assert!(request.url.ends_with("/events/denver-2027/enter"));
    let fields: std::collections::BTreeMap<_, _> = request.fields.into_iter().collect();
    assert_eq!(fields["discipline"], "Team Roping");
    assert_eq!(fields["partner"], "Jo Smith");
    assert_eq!(
        fields["agree"], "yes",
        "hidden fields go as the page has them"
    );
    assert_eq!(fixture.posts().len(), posts_before);

    let done = site
        .submit_entry(
            &entry("denver-2027", "Team Roping", Some("Jo Smith")),
            false,
        )
        .await
        .unwrap();
    let WriteOutcome::Done { confirmation } = done else {
        panic!("{done:?}")
    };
    assert_eq!(confirmation, "E1001");
    let entries = site.my_entries().await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].partner.as_deref(), Some("Jo Smith"));

    let gone = site.withdraw_entry("E1001", false).await.unwrap();
    assert!(
        matches!(gone, WriteOutcome::Done { ref confirmation } if confirmation == "E1001"),
        "{gone:?}"
    );
    let again = refused(site.withdraw_entry("E1001", false).await.unwrap());
    assert!(again.contains("already been withdrawn"), "{again}");
    let e = site.withdraw_entry("E9999", false).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
}

#[tokio::test]
async fn throttling_and_failures_are_waited_out_or_reported() {
    let fixture = RodeoSite::start().await;
    let site = adapter(&fixture);
    // robots.txt first, so the switches below hit the pages
    site.event("reno-2027").await.unwrap();
    fixture.throttle(1, 1);
    let started = std::time::Instant::now();
    site.event("reno-2027").await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    fixture.throttle(1, 600);
    let e = site.event("reno-2027").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(600));

    fixture.fail(2);
    site.event("reno-2027").await.unwrap();
    fixture.fail(10);
    let e = site.event("reno-2027").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Upstream, "{e}");
    fixture.fail(0);

    // a write that meets a 5xx is not repeated: the site may have acted
    site.my_entries().await.unwrap();
    let before = fixture.received().len();
    fixture.fail_posts(1);
    let e = site
        .submit_entry(&entry("reno-2027", "Bull Riding", None), false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Upstream, "{e}");
    assert!(
        matches!(e, WriteError::Uncertain(_)),
        "the site may have acted: {e}"
    );
    assert!(e.to_string().contains("list_my_entries"), "{e}");
    let sent: Vec<_> = fixture.received()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(sent, ["GET", "POST"], "the form page, then one POST");
    assert_eq!(site.my_entries().await.unwrap().len(), 1);
}

#[tokio::test]
async fn robots_layouts_and_accounts_fail_clearly() {
    let fixture = RodeoSite::start().await;
    fixture.set_robots("User-agent: *\nDisallow: /standings\n");
    let site = adapter(&fixture);
    let e = site.standings("bull-riding", None, 5).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden, "{e}");
    assert!(e.to_string().contains("robots.txt"), "{e}");
    assert!(
        !fixture
            .received()
            .iter()
            .any(|r| r.path.starts_with("/standings"))
    );

    // the site changed its pages: an error, never garbage
    let text = std::fs::read_to_string(layout_path()).unwrap();
    let moved = text.replace(
        "container = \"table.events\"",
        "container = \"table.calendar\"",
    );
    let site = HttpSite::new(Layout::parse(&moved).unwrap(), settings(&fixture)).unwrap();
    let e = site
        .search_events(&EventQuery {
            limit: 5,
            ..EventQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Upstream);
    assert!(e.to_string().starts_with("layout not understood"), "{e}");
    let renamed = text.replace("venue = \"dd.venue\"", "venue = \"dd.place\"");
    let site = HttpSite::new(Layout::parse(&renamed).unwrap(), settings(&fixture)).unwrap();
    let e = site.event("reno-2027").await.unwrap_err();
    assert!(e.to_string().contains("has no `venue`"), "{e}");

    // a wrong password, or none: the operator is told what to fix
    let mut wrong = settings(&fixture);
    wrong.password = Some(Secret::new("not it"));
    let site = HttpSite::new(Layout::load(&layout_path()).unwrap(), wrong).unwrap();
    let e = site.my_entries().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(e.to_string().contains("Invalid email or password"), "{e}");
    let mut none = settings(&fixture);
    none.password = None;
    let site = HttpSite::new(Layout::load(&layout_path()).unwrap(), none).unwrap();
    let e = site.my_entries().await.unwrap_err();
    assert!(e.to_string().contains("sites.<domain>.password"), "{e}");
    assert!(!format!("{e}").contains(PASSWORD));
}

/// Credentials and writes go to the configured site only: a form whose action points elsewhere
/// is never sent, redirects off the site are never followed, and a POST is never sent twice.
#[tokio::test]
async fn writes_and_credentials_never_leave_the_site() {
    let fixture = RodeoSite::start().await;
    let elsewhere = RodeoSite::start().await;
    let site = adapter(&fixture);
    let bull_riding = || entry("reno-2027", "Bull Riding", None);

    // the sign-in form posts to another origin: the password is not sent there
    fixture.form_actions_to(&elsewhere.url);
    let e = site.my_entries().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden, "{e}");
    assert!(e.to_string().contains("not the site"), "{e}");
    assert!(
        elsewhere.received().is_empty(),
        "nothing reached the other origin"
    );
    fixture.form_actions_to("");
    site.my_entries().await.unwrap();

    // the entry form posts elsewhere: refused before anything is sent, so it may be retried
    fixture.form_actions_to(&elsewhere.url);
    let e = site.submit_entry(&bull_riding(), false).await.unwrap_err();
    assert!(matches!(e, WriteError::NotSent(_)), "{e}");
    assert!(elsewhere.received().is_empty());
    fixture.form_actions_to("");

    // a POST answered "send it again over there" (307): not resent; it may have been seen
    let posts = fixture.posts().len();
    fixture.redirect_next_post(307, "/events/reno-2027/enter-again");
    let e = site.submit_entry(&bull_riding(), false).await.unwrap_err();
    assert!(matches!(e, WriteError::Uncertain(_)), "{e}");
    assert!(e.to_string().contains("list_my_entries"), "{e}");
    assert_eq!(fixture.posts().len(), posts + 1, "one POST, never repeated");

    // a POST redirected off the site: not followed
    fixture.redirect_next_post(303, &format!("{}/members/entries", elsewhere.url));
    let e = site.submit_entry(&bull_riding(), false).await.unwrap_err();
    assert!(matches!(e, WriteError::Uncertain(_)), "{e}");
    assert!(elsewhere.received().is_empty());

    // the ordinary flow still works: POST, then the site's redirect-free answer
    let done = site.submit_entry(&bull_riding(), false).await.unwrap();
    assert!(matches!(done, WriteOutcome::Done { .. }), "{done:?}");
}
