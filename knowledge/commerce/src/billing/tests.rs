use super::*;

fn row(status: &str) -> SubscriptionRow {
    SubscriptionRow {
        id: "sub_1".into(),
        user_id: "u".into(),
        customer_id: "cus_1".into(),
        status: status.into(),
        price_id: "price_pro".into(),
        plan: "pro".into(),
        interval: "month".into(),
        current_period_end: Some(10_000),
        cancel_at_period_end: false,
        past_due_since: Some(1_000),
        last_event_at: 1,
        applied_plan: String::new(),
    }
}

#[test]
fn statuses_give_plans() {
    let rule = PlanRule {
        free_plan: "free".into(),
        grace_ms: 5_000,
        now: 5_999,
    };
    for (status, plan) in [
        ("active", "pro"),
        ("trialing", "pro"),
        ("past_due", "pro"),
        ("canceled", "pro"),
        ("unpaid", "pro"),
        ("incomplete", "free"),
        ("incomplete_expired", "free"),
        ("paused", "free"),
    ] {
        assert_eq!(rule.effective(&row(status)), plan, "{status}");
    }
    let later = PlanRule {
        now: 10_000,
        ..rule.clone()
    };
    assert_eq!(later.effective(&row("past_due")), "free");
    assert_eq!(later.effective(&row("canceled")), "free");
    assert_eq!(later.effective(&row("active")), "pro");
    let unknown_price = SubscriptionRow {
        plan: String::new(),
        ..row("active")
    };
    assert_eq!(rule.effective(&unknown_price), "free");
    // the most recently changed paid subscription decides
    let team = SubscriptionRow {
        id: "sub_2".into(),
        plan: "team".into(),
        last_event_at: 2,
        ..row("active")
    };
    assert_eq!(rule.plan_for(&[row("active"), team.clone()]), "team");
    assert_eq!(rule.plan_for(&[row("active"), row("incomplete")]), "pro");
    assert_eq!(later.plan_for(&[row("canceled")]), "free");
    assert_eq!(rule.plan_for(&[]), "free");
}
