//! `/metrics` in Prometheus text format. Labels carry no repository or principal names.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::app::AppState;

pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    text.push_str("# HELP wharf_password_checks_total Password and secret checks run by logins.\n");
    text.push_str("# TYPE wharf_password_checks_total counter\n");
    text.push_str(&format!(
        "wharf_password_checks_total {}\n",
        state.identity.password_checks()
    ));
    text.push_str(&state.signature_policy.render_metrics());
    text.push_str(&state.gc.render_metrics());
    text.push_str(&state.usage.render_metrics().await);
    text.push_str(&state.retention.render_metrics());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
