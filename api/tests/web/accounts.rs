//! The account pages in-process: API keys shown once and users managed by admins, recovery and
//! verification pages, the export and erasure of one's data, and the session cookie's flags.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_shown_once_and_admins_manage_users() {
    let app = App::new().await;
    let (status, _, html) = app
        .form(
            "/account/keys",
            "name=%3Cb%3Ereports%3C%2Fb%3E&search=on&chat=on&expires_in_days=30",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{html}");
    assert_inert("account", &html);
    let key = html
        .split(r#"id="new-key" readonly value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the new key is on the page")
        .to_owned();
    assert!(app.service.authenticate(&key, None).await.is_ok());
    let (status, html) = app.page("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(&key), "the secret is shown only once");
    assert!(html.contains("<td>search, chat</td>"), "{html}");
    assert!(
        !html.contains(r#"name="ingest""#) && !html.contains(r#"name="admin""#),
        "a user is offered only the scopes a user may give"
    );
    for body in [
        "name=x&ingest=on",
        "name=x",
        "name=x&search=on&expires_in_days=soon",
    ] {
        let (status, _, _) = app.form("/account/keys", body, Some(&app.cookie)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert!(html.contains("Messages: 0 of"), "{html}");
    assert!(
        html.contains("(this browser)") && html.contains("Sign out everywhere"),
        "{html}"
    );
    let (status, _, _) = app
        .form(
            "/account/password",
            "current_password=wrong&new_password=another+long+password",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, headers, _) = app
        .form(
            "/account/password",
            "current_password=a+fine+long+password&new_password=another+long+password",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/account?done=password");
    let (status, html) = app.page("/account?done=password").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the changing session stays signed in"
    );
    assert!(html.contains("Your password is changed"), "{html}");
    let principal = app
        .service
        .accounts
        .authenticate(app.cookie.trim_start_matches("lariat_access="))
        .await
        .unwrap();
    let id = app.service.accounts.api_keys(&principal).await.unwrap()[0]
        .id
        .clone();
    let (status, headers, _) = app
        .form(&format!("/account/keys/{id}/revoke"), "", Some(&app.cookie))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/account?done=revoked");
    assert!(app.service.authenticate(&key, None).await.is_err());

    // the admin page: status, users; a plain user's page refuses it above
    let admin = app.admin_cookie().await;
    let (status, html) = app.page_as("/admin?q=RIDER", &admin).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("consistent"), "{html}");
    // the filter keeps the rider; the admin (in the header, not the list) is filtered out
    assert!(
        html.contains("rider@example.com") && !html.contains("(you)"),
        "{html}"
    );
    let rider = app.service.accounts.user_by_email(EMAIL).await.unwrap();
    let (status, _, html) = app
        .form(
            &format!("/admin/users/{}", rider.id),
            "role=curator&plan=free&disabled=on",
            Some(&admin),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let rider = app.service.accounts.user_by_email(EMAIL).await.unwrap();
    assert!(rider.disabled && rider.role == base::principal::Role::Curator);
    // disabling signed the rider out everywhere
    let (status, _) = app.page("/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // an admin cannot lock themselves out, and a made-up role is refused
    let boss = app
        .service
        .accounts
        .user_by_email("boss@example.com")
        .await
        .unwrap();
    for (body, want) in [
        ("role=admin&plan=free&disabled=on", StatusCode::CONFLICT),
        ("role=king&plan=free", StatusCode::BAD_REQUEST),
        ("role=admin&plan=platinum", StatusCode::BAD_REQUEST),
    ] {
        let (status, _, html) = app
            .form(&format!("/admin/users/{}", boss.id), body, Some(&admin))
            .await;
        assert_eq!(status, want, "{body}: {html}");
    }
    // the audit page names the rider, the change and the key, the key's name as text
    let (status, html) = app
        .page_as("/admin/audit?user=rider%40example.com", &admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for needle in [
        "user_changed",
        "key_created",
        "rider@example.com",
        "boss@example.com",
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    assert!(!html.contains("<b>reports"), "{html}");
    let (_, html) = app.page_as("/admin/audit?event=key_created", &admin).await;
    assert!(!html.contains("user_changed</td>"), "{html}");
    let (status, _) = app.page_as("/admin/audit?event=nope", &admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.page("/admin/audit").await;
    assert_ne!(status, StatusCode::OK, "only admins read the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_pages_escape_what_they_are_given() {
    let app = App::new().await;
    let (status, html) = app.page("/reset?token=%22%3E%3Cimg%20src%3Dx%3E").await;
    assert_eq!(status, StatusCode::OK);
    assert_inert("reset page", &html);
    let (status, _, html) = app
        .form(
            "/reset",
            "token=lrr_forged&new_password=a+long+new+password",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invalid, used or expired"), "{html}");
    let (status, _, html) = app
        .form("/forgot", "email=%3Cimg+src%3Dx%3E%40example.com", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert_inert("forgot page", &html);
    let (status, html) = app.page("/signin?done=reset").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Your password is changed"), "{html}");
    for (page, action) in [("/verify", "/verify"), ("/confirm-email", "/confirm-email")] {
        let (status, html) = app
            .page(&format!("{page}?token=%22%3E%3Cimg%20src%3Dx%3E"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_inert(page, &html);
        assert!(html.contains(&format!("action=\"{action}\"")), "{html}");
        let (status, _, html) = app.form(action, "token=%3Cimg+src%3Dx%3E", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_inert(page, &html);
        assert!(html.contains("invalid, used or expired"), "{html}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unverified_account_is_told_to_verify_and_may_ask_for_a_new_link() {
    let app = App::new().await;
    let accounts = &app.service.accounts;
    accounts
        .signup("new@example.com", PASSWORD, None)
        .await
        .unwrap();
    let pair = accounts
        .signin("new@example.com", PASSWORD, &Default::default())
        .await
        .unwrap();
    let cookie = format!("lariat_access={}", pair.access_token);
    let (status, html) = app.page_as("/chat", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Verify your e-mail address to ask"), "{html}");
    let (_, html) = app.page_as("/account", &cookie).await;
    assert!(html.contains("(not verified)") && html.contains("action=\"/account/verify\""));
    // no API key until the address is proven: the form is not offered, and a post is refused
    assert!(html.contains("Verify your address (above) to make API keys"));
    assert!(!html.contains("action=\"/account/keys\""), "{html}");
    let (status, _, html) = app
        .form("/account/keys", "name=k&search=on", Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        html.contains("confirm your e-mail address before making API keys"),
        "{html}"
    );
    let (status, headers, _) = app.form("/account/verify", "", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/account?done=verify-sent");
    // the verified user sees neither
    let (_, html) = app.page("/chat").await;
    assert!(!html.contains("Verify your e-mail address"), "{html}");
    let (_, html) = app.page("/account").await;
    assert!(html.contains("(verified)") && !html.contains("/account/verify"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_page_exports_and_erases_your_data() {
    let app = App::new().await;
    let (status, headers, _) = app.form("/account/export", "", Some(&app.cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/account?done=export#data-h");
    let rider = app
        .service
        .authenticate(app.cookie.trim_start_matches("lariat_access="), None);
    let rider = rider.await.unwrap();
    let started = std::time::Instant::now();
    let id = loop {
        let exports = app.service.privacy.exports(&rider).await.unwrap();
        if exports[0].status == operations::privacy::ExportStatus::Ready {
            break exports[0].id.clone();
        }
        assert!(started.elapsed().as_secs() < 20, "{exports:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let (_, html) = app.page("/account").await;
    assert!(html.contains(&format!("/account/exports/{id}")), "{html}");
    let (status, archive) = app.page(&format!("/account/exports/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(archive.contains(EMAIL), "{archive}");
    let (status, _, _) = app
        .form("/account/delete", "password=not+it", Some(&app.cookie))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, headers, _) = app
        .form(
            "/account/delete",
            "password=a+fine+long+password",
            Some(&app.cookie),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/signin?done=erased");
    let (_, html) = app.page("/signin?done=erased").await;
    assert!(html.contains("are erased"), "{html}");
    assert!(
        app.service
            .accounts
            .signin(EMAIL, PASSWORD, &Default::default())
            .await
            .is_err()
    );
}

/// Signs in through the page's form, with `extra` headers; the `Set-Cookie` values.
async fn signin_cookies(app: &App, extra: &[(&str, &str)]) -> Vec<String> {
    let mut req = Request::post("/signin")
        .header(header::HOST, "lariat.test")
        .header(header::ORIGIN, "http://lariat.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let body = "email=rider%40example.com&password=a+fine+long+password";
    let (status, headers, html) = app.send(req.body(Body::from(body)).unwrap()).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_are_secure_and_prefixed_as_the_public_address_says_never_as_a_client_does() {
    // on http a client claiming https (X-Forwarded-Proto) makes nothing Secure
    let app = App::new().await;
    let cookies = signin_cookies(&app, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(c.starts_with("lariat_") && !c.contains("Secure"), "{c}");
    }
    // on https: the session is a __Host- cookie, the refresh token a __Secure- one, both Secure
    let app = App::with_env(&[("LARIAT_MAIL__PUBLIC_URL", "https://lariat.test")]).await;
    let cookies = signin_cookies(&app, &[]).await;
    let access = cookies
        .iter()
        .find(|c| c.starts_with("__Host-lariat_access="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(
        access.contains("; Path=/;") && !access.contains("Domain"),
        "{access}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Secure-lariat_refresh=") && c.ends_with("; Secure"))
    );
    assert!(
        cookies.iter().all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );
    // the prefixed cookie signs the browser in; the unprefixed name does not
    let token = access
        .trim_start_matches("__Host-lariat_access=")
        .split(';')
        .next()
        .unwrap();
    let (status, _) = app
        .page_as("/account", &format!("__Host-lariat_access={token}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .page_as("/account", &format!("lariat_access={token}"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
