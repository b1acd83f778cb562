//! Labels in English and Portuguese. The language comes from `?lang=`
//! (remembered in a cookie), else the cookie, else `Accept-Language`.

use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::HeaderMap;

/// A page language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Portuguese.
    Pt,
}

impl Lang {
    /// `en` or `pt`.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Pt => "pt",
        }
    }

    /// The language from a code.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "en" => Some(Self::En),
            "pt" | "pt-BR" | "pt-PT" => Some(Self::Pt),
            _ => None,
        }
    }

    /// The language of a request: `query` (`?lang=`), the `aviso_lang`
    /// cookie, then `Accept-Language`.
    pub fn of(headers: &HeaderMap, query: Option<&str>) -> Self {
        if let Some(l) = query.and_then(Self::parse) {
            return l;
        }
        if let Some(l) = crate::cookie(headers, "aviso_lang").and_then(Self::parse) {
            return l;
        }
        let accept = headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if accept.trim_start().to_ascii_lowercase().starts_with("pt") {
            Self::Pt
        } else {
            Self::En
        }
    }

    /// The label `key` in this language.
    pub fn t(self, key: &str) -> &'static str {
        let (en, pt) = label(key);
        match self {
            Self::En => en,
            Self::Pt => pt,
        }
    }
}

/// (English, Portuguese) of each label.
fn label(key: &str) -> (&'static str, &'static str) {
    match key {
        "integrations" => ("Webhook integrations", "Configuração de webhook"),
        "new" => ("New", "Novo"),
        "no_integrations" => (
            "No webhook yet: click \u{201c}New\u{201d} to set one up.",
            "Nenhum webhook encontrado, clique em \u{201c}Novo\u{201d} para configurar.",
        ),
        "description" => ("Description", "Descrição"),
        "url" => ("Webhook URL", "URL webhook"),
        "status" => ("Status", "Status"),
        "active" => ("Active", "Ativo"),
        "inactive" => ("Inactive", "Inativo"),
        "failing" => ("Failing", "Com falhas"),
        "failing_hint" => (
            "deliveries failed in the last 24 hours",
            "entregas falharam nas últimas 24 horas",
        ),
        "auth" => ("Authentication", "Autenticação"),
        "auth_none" => ("None", "Nenhuma"),
        "auth_basic" => ("Basic authentication", "Basic authentication"),
        "auth_key" => ("Authorization", "Authorization"),
        "username" => ("User", "Usuário"),
        "password" => ("Password", "Senha"),
        "key_value" => ("Key value", "Valor da chave"),
        "keep_secret" => (
            "Leave empty to keep the current value.",
            "Deixe vazio para manter o valor atual.",
        ),
        "products" => ("Products", "Produtos"),
        "products_hint" => (
            "Tick the products this webhook receives (a group ticks all of it). None ticked: every product.",
            "Marque os produtos que este webhook recebe (um grupo marca todos os seus). Nenhum marcado: todos os produtos.",
        ),
        "other" => ("Other", "Outros"),
        "delivery_settings" => ("Delivery settings", "Configurações de entrega"),
        "defaults_hint" => (
            "Empty fields take the default shown.",
            "Campos vazios usam o padrão indicado.",
        ),
        "success" => ("Success status codes", "Códigos de sucesso"),
        "retry" => ("Retries", "Retentativas"),
        "retry_default" => ("Server default", "Padrão do servidor"),
        "retry_schedule" => ("Schedule (waits after each failure)", "Agenda (esperas após cada falha)"),
        "retry_fixed" => ("Fixed interval", "Intervalo fixo"),
        "retry_exponential" => ("Exponential", "Exponencial"),
        "waits" => ("Waits, comma-separated", "Esperas, separadas por vírgula"),
        "every" => ("Every", "A cada"),
        "for" => ("For", "Durante"),
        "initial" => ("Initial wait", "Espera inicial"),
        "factor" => ("Factor", "Fator"),
        "max_interval" => ("Longest wait", "Espera máxima"),
        "max_attempts" => ("Most attempts", "Máximo de tentativas"),
        "max_age" => ("Give up after", "Desistir após"),
        "timeout" => ("Timeout", "Tempo limite"),
        "max_in_flight" => ("Concurrent requests", "Requisições simultâneas"),
        "default" => ("default", "padrão"),
        "save" => ("Save", "Salvar"),
        "cancel" => ("Cancel", "Cancelar"),
        "fix_errors" => ("Please fix the fields marked below.", "Corrija os campos indicados abaixo."),
        "send" => ("Send", "Enviar"),
        "send_all" => ("Send all", "Enviar tudo"),
        "resend_pending" => ("Resend pending", "Reenviar pendentes"),
        "edit" => ("Edit", "Editar"),
        "details" => ("Show details", "Exibir detalhes"),
        "log" => ("Delivery log", "Histórico de entregas"),
        "secret" => ("Signing secret", "Segredo de assinatura"),
        "reveal" => ("Reveal signing secret", "Mostrar segredo de assinatura"),
        "rotate" => ("Rotate secret", "Trocar segredo"),
        "rotated" => (
            "A new secret is active; the old one keeps signing during the grace period.",
            "Um novo segredo está ativo; o anterior continua assinando durante o período de transição.",
        ),
        "secret_hint" => (
            "Verify the webhook-signature header with this secret (Standard Webhooks).",
            "Verifique o cabeçalho webhook-signature com este segredo (Standard Webhooks).",
        ),
        "activate" => ("Activate", "Ativar"),
        "deactivate" => ("Deactivate", "Desativar"),
        "product" => ("Product", "Produto"),
        "last_event" => ("Latest publication", "Última publicação"),
        "last_delivery" => ("Last delivery", "Última entrega"),
        "never" => ("none yet", "nenhuma ainda"),
        "not_delivered" => ("not sent to this webhook", "não enviado a este webhook"),
        "back" => ("Back", "Voltar"),
        "created" => ("Integration created.", "Integração criada."),
        "saved" => ("Changes saved.", "Alterações salvas."),
        "test_ok" => ("Test sent: the receiver answered", "Teste enviado: o receptor respondeu"),
        "test_failed" => ("Test failed", "O teste falhou"),
        "queued" => ("Queued for delivery", "Enviado para a fila de entrega"),
        "switched_on" => ("Integration activated.", "Integração ativada."),
        "switched_off" => (
            "Integration deactivated: pending deliveries were cancelled.",
            "Integração desativada: as entregas pendentes foram canceladas.",
        ),
        "event_type" => ("Product / event type", "Produto / tipo de evento"),
        "since" => ("Since", "Desde"),
        "filter" => ("Filter", "Filtrar"),
        "any" => ("any", "qualquer"),
        "pending" => ("pending", "pendente"),
        "succeeded" => ("succeeded", "sucesso"),
        "failed" => ("failed", "falhou"),
        "cancelled" => ("cancelled", "cancelado"),
        "created_at" => ("Created", "Criado em"),
        "attempts" => ("Attempts", "Tentativas"),
        "response" => ("Response", "Resposta"),
        "next_page" => ("Next page", "Próxima página"),
        "delivery" => ("Delivery", "Entrega"),
        "event" => ("Event", "Evento"),
        "payload" => ("Payload", "Conteúdo"),
        "request_headers" => ("Request headers (secrets hidden)", "Cabeçalhos enviados (segredos ocultos)"),
        "response_headers" => ("Response headers", "Cabeçalhos da resposta"),
        "no_attempts" => ("No attempt yet.", "Nenhuma tentativa ainda."),
        "duration" => ("Duration", "Duração"),
        "error" => ("Error", "Erro"),
        "resend" => ("Resend", "Reenviar"),
        "sign_out" => ("Sign out", "Sair"),
        "bad_link" => (
            "This link is invalid or has expired. Open the webhook settings again from your account to get a new one.",
            "Este link é inválido ou expirou. Abra novamente a configuração de webhook a partir da sua conta para obter um novo.",
        ),
        "signed_out" => (
            "Your session has ended. Open the webhook settings again from your account.",
            "Sua sessão terminou. Abra novamente a configuração de webhook a partir da sua conta.",
        ),
        "forbidden" => (
            "This form has expired; reload the page and try again.",
            "Este formulário expirou; recarregue a página e tente novamente.",
        ),
        "not_found" => ("Not found.", "Não encontrado."),
        "language" => ("Language", "Idioma"),
        // The admin console.
        "admin" => ("Aviso admin", "Administração do Aviso"),
        "admin_key" => ("Admin key", "Chave de administrador"),
        "sign_in" => ("Sign in", "Entrar"),
        "wrong_key" => ("That is not an admin key.", "Esta não é uma chave de administrador."),
        "overview" => ("Live view", "Visão ao vivo"),
        "tenants" => ("Tenants", "Clientes"),
        "partners" => ("Partners", "Parceiros"),
        "catalogue" => ("Event-type catalogue", "Catálogo de tipos de evento"),
        "keys" => ("API keys", "Chaves de API"),
        "uid" => ("External id (uid)", "Identificador externo (uid)"),
        "name" => ("Name", "Nome"),
        "group" => ("Group (macro-process/process)", "Grupo (macroprocesso/processo)"),
        "example" => ("Example payload (JSON)", "Exemplo de conteúdo (JSON)"),
        "archived" => ("archived", "arquivado"),
        "create" => ("Create", "Criar"),
        "open_portal" => ("Open portal", "Abrir portal"),
        "partner" => ("Partner", "Parceiro"),
        "tenant" => ("Tenant", "Cliente"),
        "key_created" => (
            "Key created. Copy it now: it is not shown again.",
            "Chave criada. Copie agora: ela não será exibida novamente.",
        ),
        "revoke" => ("Revoke key", "Revogar chave"),
        "key_id" => ("Key id (key_…)", "Id da chave (key_…)"),
        "revoked" => ("Key revoked.", "Chave revogada."),
        "delivery_rate" => ("Deliveries/s", "Entregas/s"),
        "failure_rate" => ("Failed deliveries/s", "Entregas falhas/s"),
        "publish_rate" => ("Events published/s", "Eventos publicados/s"),
        "queue_ready" => ("Queue: ready", "Fila: prontos"),
        "queue_lanes" => ("Queue: waiting for a slot", "Fila: aguardando vaga"),
        "queue_scheduled" => ("Queue: retries scheduled", "Fila: retentativas agendadas"),
        "in_flight" => ("Requests in flight", "Requisições em andamento"),
        "circuits_open" => ("Circuits open", "Circuitos abertos"),
        "failing_endpoints" => ("Failing endpoints (last hour)", "Endpoints com falhas (última hora)"),
        "none_failing" => ("No endpoint is failing.", "Nenhum endpoint com falhas."),
        "failed_count" => ("Failed", "Falhas"),
        "endpoint" => ("Endpoint", "Endpoint"),
        "metrics_off" => ("Metrics are off (`metrics = false`).", "As métricas estão desligadas (`metrics = false`)."),
        _ => ("?", "?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every label the pages use exists in both languages (a missing key
    /// shows as "?").
    #[test]
    fn every_label_used_by_the_pages_exists() {
        let sources = [
            include_str!("tenant.rs"),
            include_str!("admin.rs"),
            include_str!("layout.rs"),
        ];
        let mut missing = Vec::new();
        for src in sources {
            for (i, _) in src.match_indices(".t(\"") {
                let rest = &src[i + 4..];
                let key = &rest[..rest.find('"').unwrap()];
                if label(key).0 == "?" {
                    missing.push(key.to_owned());
                }
            }
        }
        assert!(missing.is_empty(), "labels without text: {missing:?}");
    }

    #[test]
    fn language_comes_from_query_then_cookie_then_accept_language() {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_LANGUAGE, "pt-BR,pt;q=0.9".parse().unwrap());
        assert_eq!(Lang::of(&h, None), Lang::Pt);
        assert_eq!(Lang::of(&h, Some("en")), Lang::En);
        h.insert(axum::http::header::COOKIE, "aviso_lang=en".parse().unwrap());
        assert_eq!(Lang::of(&h, None), Lang::En);
        assert_eq!(Lang::of(&HeaderMap::new(), None), Lang::En);
    }
}
