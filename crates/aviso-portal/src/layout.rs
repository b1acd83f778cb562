//! The page shell and the pieces pages share. maud escapes every value.

use crate::i18n::Lang;
use maud::{html, Markup, DOCTYPE};

/// A flash message above the content: (is it good news, text).
pub(crate) type Flash = Option<(bool, String)>;

/// A whole page: `title`, the navigation links, an optional sign-out form
/// (with its CSRF token and action), a flash message, the content.
pub(crate) fn page(
    lang: Lang,
    title: &str,
    nav: &[(&str, String)],
    sign_out: Option<(&str, &str)>,
    flash: &Flash,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(if lang == Lang::Pt { "pt-BR" } else { "en" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Aviso" }
                link rel="stylesheet" href="/portal/assets/aviso.css";
                script src="/portal/assets/aviso.js" defer {}
            }
            body {
                header.top {
                    nav aria-label="main" {
                        @for (label, href) in nav {
                            a href=(href) { (label) }
                        }
                    }
                    div.tools {
                        span.langs aria-label=(lang.t("language")) {
                            a href="?lang=pt" aria-current=[(lang == Lang::Pt).then_some("true")] { "PT" }
                            " · "
                            a href="?lang=en" aria-current=[(lang == Lang::En).then_some("true")] { "EN" }
                        }
                        @if let Some((action, csrf)) = sign_out {
                            form.inline method="post" action=(action) {
                                input type="hidden" name="csrf" value=(csrf);
                                button.link type="submit" { (lang.t("sign_out")) }
                            }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some((good, text)) = flash {
                        p.flash.(if *good { "good" } else { "bad" }) role="status" { (text) }
                    }
                    (content)
                }
            }
        }
    }
}

/// A small page with only a message (bad link, session ended, not found).
pub(crate) fn message(lang: Lang, title: &str, text: &str) -> Markup {
    page(
        lang,
        title,
        &[],
        None,
        &None,
        html! { p.message { (text) } },
    )
}

/// A delivery status as a coloured badge with its label.
pub(crate) fn status_badge(lang: Lang, status: &str) -> Markup {
    let label = match status {
        "pending" | "succeeded" | "failed" | "cancelled" => lang.t(status),
        _ => "?",
    };
    html! { span.badge.(format!("s-{status}")) data-status=(status) { (label) } }
}

/// The error under a form field, if the API named it.
pub(crate) fn field_error(errors: &[(String, String)], field: &str) -> Markup {
    html! {
        @for (f, msg) in errors {
            @if f == field {
                p.error id=(format!("err-{field}")) role="alert" { (msg) }
            }
        }
    }
}

/// Text input with a label, a default hint and an error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn text_field(
    name: &str,
    label: &str,
    value: &str,
    placeholder: Option<&str>,
    kind: &str,
    errors: &[(String, String)],
    error_key: &str,
    required: bool,
) -> Markup {
    let has_error = errors.iter().any(|(f, _)| f == error_key);
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value) placeholder=[placeholder]
                required[required]
                aria-invalid=[has_error.then_some("true")]
                aria-describedby=[has_error.then(|| format!("err-{error_key}"))];
            (field_error(errors, error_key))
        }
    }
}

/// An RFC 3339 time shown shorter: `2026-11-23 10:15:02 UTC`.
pub(crate) fn when(t: &str) -> String {
    match t.split_once('T') {
        Some((d, rest)) => {
            let time = rest.trim_end_matches('Z');
            let time = time.split('.').next().unwrap_or(time);
            format!("{d} {time} UTC")
        }
        None => t.to_owned(),
    }
}
