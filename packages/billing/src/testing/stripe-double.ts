import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";
import { type FormValue, parseStripeForm } from "./form-body.ts";

/**
 * A local HTTP double of the Stripe endpoints Kiln uses, for tests and local development. The real
 * `stripe` SDK talks to it over HTTP (host/port/protocol options), so requests and responses keep the
 * shapes of Stripe's API (version 2026-02-25.clover): customers, Checkout and Customer Portal
 * sessions, subscriptions, invoices, Billing meter events (deduplicated by identifier). What a customer
 * does on Stripe's hosted pages (pay, cancel, change plan, a card declining) is driven through the
 * control methods below or the double's own small HTML pages, and produces the same webhook events
 * Stripe sends, signed with the endpoint secret.
 */

type Json = Record<string, unknown>;
type Obj = Json & { id: string };

export type StripeDoubleOptions = {
  /** The secret key clients must present (Authorization: Bearer …). */
  secretKey: string;
  /** The webhook signing secret events are signed with. */
  webhookSecret: string;
  /** Where to POST events; unset keeps them in `events` only. Settable later with `setWebhookUrl`. */
  webhookUrl?: string;
  /** Flat unit amounts (cents) of licensed prices, for invoice totals; metered prices bill 0 here. */
  priceAmounts?: Record<string, number>;
};

export type DeliveredEvent = { event: Stripe.Event; status: number | null };

const API_VERSION = "2026-02-25.clover";
const THIRTY_DAYS = 30 * 24 * 3600;
const METER_WINDOW_PAST = 35 * 24 * 3600;
const METER_WINDOW_FUTURE = 5 * 60;

class DoubleError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly param?: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export class StripeDouble {
  readonly customers = new Map<string, Obj>();
  readonly checkoutSessions = new Map<string, Obj>();
  readonly portalSessions = new Map<string, Obj>();
  readonly subscriptions = new Map<string, Obj>();
  readonly invoices = new Map<string, Obj>();
  /** Accepted meter events by identifier: a second event with a known identifier is refused, as Stripe does. */
  readonly meterEvents = new Map<string, Obj>();
  /** Every event produced, oldest first, whether or not it was delivered. */
  readonly events: Stripe.Event[] = [];
  /** Requests seen, for tests that check what the SDK sent ("POST /v1/customers"). */
  readonly requests: string[] = [];

  private server: Server | undefined;
  private inFlight = new Set<Promise<unknown>>();
  private idempotent = new Map<string, { status: number; body: unknown }>();
  private clockOffsetSeconds = 0;
  private webhookUrl: string | undefined;
  private readonly signer = new Stripe("sk_test_double_signer");

  constructor(private readonly options: StripeDoubleOptions) {
    this.webhookUrl = options.webhookUrl;
  }

  /** Starts listening on 127.0.0.1 (port 0 = any free port). */
  async start(port = 0): Promise<{ host: string; port: number; protocol: "http"; url: string }> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { type: "api_error", message: String(error) } }));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(port, "127.0.0.1", resolve));
    const address = this.server.address() as AddressInfo;
    return { host: "127.0.0.1", port: address.port, protocol: "http", url: `http://127.0.0.1:${address.port}` };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error("the Stripe double is not started");
    return `http://127.0.0.1:${address.port}`;
  }

  setWebhookUrl(url: string | undefined): void {
    this.webhookUrl = url;
  }

  /** Stripe's clock, in seconds; `advance` moves it (and every later object's timestamps) forward. */
  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  advance(seconds: number): void {
    this.clockOffsetSeconds += seconds;
  }

  // ─── What a customer does on Stripe's pages ─────────────────────────────────────────────────

  /**
   * The customer pays on the Checkout page: the subscription starts, its first invoice is paid, and
   * Stripe sends checkout.session.completed, customer.subscription.created and invoice.paid.
   */
  async completeCheckout(sessionId: string): Promise<DeliveredEvent[]> {
    const session = this.mustGet(this.checkoutSessions, sessionId, "checkout session");
    if (session.status !== "open") throw new Error(`checkout session ${sessionId} is ${String(session.status)}`);
    const lineItems = session.line_items as { price: string; quantity?: number }[];
    const subscription = this.createSubscription(
      String(session.customer),
      lineItems,
      ((session.subscription_data as Json | undefined)?.metadata as Json | undefined) ?? {},
    );
    Object.assign(session, { status: "complete", payment_status: "paid", subscription: subscription.id });
    const invoice = this.createInvoice(subscription, "paid");
    return this.deliverAll([
      this.event("customer.subscription.created", subscription),
      this.event("checkout.session.completed", this.publicSession(session)),
      this.event("invoice.paid", invoice),
    ]);
  }

  /** The next renewal's payment is declined: the subscription goes past_due and Stripe says so. */
  async failRenewal(subscriptionId: string): Promise<DeliveredEvent[]> {
    const subscription = this.mustGet(this.subscriptions, subscriptionId, "subscription");
    this.renew(subscription);
    subscription.status = "past_due";
    const invoice = this.createInvoice(subscription, "open");
    return this.deliverAll([
      this.event("invoice.payment_failed", invoice),
      this.event("customer.subscription.updated", subscription),
    ]);
  }

  /** The renewal is paid: a new period starts with a paid invoice. */
  async payRenewal(subscriptionId: string): Promise<DeliveredEvent[]> {
    const subscription = this.mustGet(this.subscriptions, subscriptionId, "subscription");
    this.renew(subscription);
    subscription.status = "active";
    const invoice = this.createInvoice(subscription, "paid");
    return this.deliverAll([
      this.event("invoice.paid", invoice),
      this.event("customer.subscription.updated", subscription),
    ]);
  }

  /** The customer confirms the portal session's flow (cancel, or change plan), or cancels from the portal home. */
  async completePortalSession(portalSessionId: string): Promise<DeliveredEvent[]> {
    const session = this.mustGet(this.portalSessions, portalSessionId, "billing portal session");
    const flow = session.flow as Json | null;
    const customer = String(session.customer);
    if (flow?.type === "subscription_update_confirm") {
      const confirm = flow.subscription_update_confirm as {
        subscription: string;
        items: { id: string; price: string }[];
      };
      const subscription = this.mustGet(this.subscriptions, confirm.subscription, "subscription");
      this.replaceItems(subscription, confirm.items);
      return this.deliverAll([this.event("customer.subscription.updated", subscription)]);
    }
    const subscriptionId =
      flow?.type === "subscription_cancel"
        ? String((flow.subscription_cancel as Json).subscription)
        : [...this.subscriptions.values()].find((s) => s.customer === customer && s.status !== "canceled")?.id;
    if (!subscriptionId) throw new Error(`customer ${customer} has no subscription to cancel`);
    return this.deliverAll([this.event("customer.subscription.deleted", this.cancel(subscriptionId))]);
  }

  // ─── Events and their delivery ──────────────────────────────────────────────────────────────

  /** A signed webhook request for `event`, exactly as Stripe would POST it. */
  signedRequest(event: Stripe.Event, secret = this.options.webhookSecret): { body: string; signature: string } {
    const body = JSON.stringify(event, null, 2);
    return { body, signature: this.signer.webhooks.generateTestHeaderString({ payload: body, secret }) };
  }

  /** Waits for webhook deliveries that API calls (subscription update, cancel) started in the background. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private deliverInBackground(event: Stripe.Event): void {
    const delivery = this.deliver(event).finally(() => this.inFlight.delete(delivery));
    this.inFlight.add(delivery);
  }

  /** POSTs `event` to the webhook URL (when set) and reports the response status. */
  async deliver(event: Stripe.Event): Promise<DeliveredEvent> {
    if (!this.webhookUrl) return { event, status: null };
    const { body, signature } = this.signedRequest(event);
    const response = await fetch(this.webhookUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": signature },
      body,
    });
    await response.arrayBuffer();
    return { event, status: response.status };
  }

  private async deliverAll(events: Stripe.Event[]): Promise<DeliveredEvent[]> {
    const delivered: DeliveredEvent[] = [];
    for (const event of events) delivered.push(await this.deliver(event));
    return delivered;
  }

  private event(type: string, object: Obj): Stripe.Event {
    const event = {
      id: this.id("evt"),
      object: "event",
      api_version: API_VERSION,
      created: this.now(),
      // A snapshot: later changes to the object do not rewrite an event already sent.
      data: { object: structuredClone(object) },
      livemode: false,
      pending_webhooks: this.webhookUrl ? 1 : 0,
      request: { id: null, idempotency_key: null },
      type,
    } as unknown as Stripe.Event;
    this.events.push(event);
    return event;
  }

  // ─── Meter events ───────────────────────────────────────────────────────────────────────────

  /** Sum of accepted meter event values for a customer and meter. */
  meteredTotal(customerId: string, eventName: string): number {
    let total = 0;
    for (const event of this.meterEvents.values()) {
      const payload = event.payload as Record<string, string>;
      if (event.event_name === eventName && payload.stripe_customer_id === customerId) total += Number(payload.value);
    }
    return total;
  }

  /** How many times a meter event create call carried `identifier` (accepted or refused as duplicate). */
  meterEventAttempts(identifier: string): number {
    return this.requests.filter((r) => r === `POST /v1/billing/meter_events ${identifier}`).length;
  }

  // ─── HTTP ───────────────────────────────────────────────────────────────────────────────────

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://double");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const method = req.method ?? "GET";

    // Stripe's hosted pages, reduced to a button, for browser tests and local development.
    if (!url.pathname.startsWith("/v1/")) return this.hostedPage(method, url, res);

    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "request-id": this.id("req") });
      res.end(JSON.stringify(body));
    };
    const authorization = req.headers.authorization ?? "";
    if (authorization !== `Bearer ${this.options.secretKey}`) {
      return send(401, {
        error: { type: "invalid_request_error", message: "Invalid API Key provided" },
      });
    }
    const idempotencyKey = req.headers["idempotency-key"];
    const replayKey =
      typeof idempotencyKey === "string" && method === "POST" ? `${url.pathname} ${idempotencyKey}` : null;
    const replay = replayKey ? this.idempotent.get(replayKey) : undefined;
    if (replay) return send(replay.status, replay.body);

    const params =
      method === "GET" || method === "DELETE" ? parseStripeForm(url.search.slice(1)) : parseStripeForm(raw);
    let status = 200;
    let body: unknown;
    try {
      body = this.route(method, url.pathname, params);
    } catch (error) {
      if (!(error instanceof DoubleError)) throw error;
      status = error.status;
      body = { error: { type: error.type, message: error.message, param: error.param, code: error.code } };
    }
    if (replayKey) this.idempotent.set(replayKey, { status, body });
    send(status, body);
  }

  private route(method: string, path: string, params: Record<string, FormValue>): unknown {
    const parts = path.split("/").slice(2); // ["customers", "cus_1"]
    const [resource, id, sub] = parts;
    this.requests.push(
      `${method} ${path}${resource === "billing" && id === "meter_events" ? ` ${String(params.identifier ?? "")}` : ""}`,
    );
    if (resource === "customers" && method === "POST" && !id) return this.createCustomer(params);
    if (resource === "customers" && method === "GET" && id) return this.mustGet(this.customers, id, "customer");
    if (resource === "checkout" && id === "sessions" && method === "POST" && !sub) return this.createCheckout(params);
    if (resource === "checkout" && id === "sessions" && method === "GET" && sub)
      return this.publicSession(this.mustGet(this.checkoutSessions, sub, "checkout.session"));
    if (resource === "billing_portal" && id === "sessions" && method === "POST") return this.createPortal(params);
    if (resource === "subscriptions" && id && method === "GET")
      return this.mustGet(this.subscriptions, id, "subscription");
    if (resource === "subscriptions" && id && method === "POST") return this.updateSubscription(id, params);
    if (resource === "subscriptions" && id && method === "DELETE") {
      const subscription = this.cancel(id);
      this.deliverInBackground(this.event("customer.subscription.deleted", subscription));
      return subscription;
    }
    if (resource === "invoices" && !id && method === "GET") return this.listInvoices(params);
    if (resource === "billing" && id === "meter_events" && method === "POST") return this.createMeterEvent(params);
    throw new DoubleError(404, "invalid_request_error", `Unrecognized request URL (${method}: ${path})`);
  }

  private createCustomer(params: Record<string, FormValue>): Obj {
    const customer = {
      id: this.id("cus"),
      object: "customer",
      created: this.now(),
      email: str(params.email),
      name: str(params.name),
      metadata: (params.metadata as Json | undefined) ?? {},
      livemode: false,
    };
    this.customers.set(customer.id, customer);
    return customer;
  }

  private createCheckout(params: Record<string, FormValue>): Json {
    const customer = required(params, "customer");
    this.mustGet(this.customers, customer, "customer", "customer");
    if (params.mode !== "subscription") {
      throw new DoubleError(400, "invalid_request_error", "Only mode=subscription is supported here", "mode");
    }
    const lineItems = (params.line_items as Record<string, FormValue>[] | undefined) ?? [];
    if (lineItems.length === 0) throw new DoubleError(400, "invalid_request_error", "Missing line_items", "line_items");
    const id = this.id("cs_test");
    const session = {
      id,
      object: "checkout.session",
      created: this.now(),
      customer,
      mode: "subscription",
      status: "open",
      payment_status: "unpaid",
      client_reference_id: str(params.client_reference_id),
      metadata: (params.metadata as Json | undefined) ?? {},
      subscription: null,
      success_url: required(params, "success_url").replace("{CHECKOUT_SESSION_ID}", id),
      cancel_url: str(params.cancel_url),
      url: `${this.url}/checkout/${id}`,
      line_items: lineItems.map((item, i) => ({ price: required(item, "price", `line_items[${i}][price]`) })),
      subscription_data: params.subscription_data ?? {},
      livemode: false,
    };
    this.checkoutSessions.set(id, session);
    return this.publicSession(session);
  }

  private publicSession(session: Obj): Obj {
    const { line_items: _lineItems, subscription_data: _subscriptionData, ...rest } = session;
    return rest as Obj;
  }

  private createPortal(params: Record<string, FormValue>): Json {
    const customer = required(params, "customer");
    this.mustGet(this.customers, customer, "customer", "customer");
    const flowData = params.flow_data as Json | undefined;
    const id = this.id("bps");
    const session = {
      id,
      object: "billing_portal.session",
      created: this.now(),
      customer,
      return_url: str(params.return_url),
      flow: flowData ?? null,
      url: `${this.url}/portal/${id}`,
      livemode: false,
    };
    this.portalSessions.set(id, session);
    return session;
  }

  private updateSubscription(id: string, params: Record<string, FormValue>): Obj {
    const subscription = this.mustGet(this.subscriptions, id, "subscription");
    if (params.items) this.replaceItems(subscription, params.items as { id: string; price: string }[]);
    if (params.cancel_at_period_end !== undefined) {
      subscription.cancel_at_period_end = params.cancel_at_period_end === "true";
    }
    this.deliverInBackground(this.event("customer.subscription.updated", subscription));
    return subscription;
  }

  private listInvoices(params: Record<string, FormValue>): Json {
    const customer = str(params.customer);
    const limit = Math.min(100, Number(params.limit ?? 10));
    const data = [...this.invoices.values()]
      .filter((invoice) => !customer || invoice.customer === customer)
      .sort((a, b) => Number(b.created) - Number(a.created) || (b.id > a.id ? 1 : -1));
    return { object: "list", url: "/v1/invoices", has_more: data.length > limit, data: data.slice(0, limit) };
  }

  private createMeterEvent(params: Record<string, FormValue>): Obj {
    const eventName = required(params, "event_name");
    const payload = (params.payload as Record<string, string> | undefined) ?? {};
    const customer = payload.stripe_customer_id;
    if (!customer || !this.customers.has(customer)) {
      throw new DoubleError(
        400,
        "invalid_request_error",
        `No such customer: '${customer}'`,
        "payload[stripe_customer_id]",
      );
    }
    if (payload.value === undefined || !/^\d+(\.\d{1,12})?$/.test(payload.value)) {
      throw new DoubleError(
        400,
        "invalid_request_error",
        "payload[value] must be a non-negative number",
        "payload[value]",
      );
    }
    const now = this.now();
    const timestamp = params.timestamp === undefined ? now : Number(params.timestamp);
    if (timestamp < now - METER_WINDOW_PAST || timestamp > now + METER_WINDOW_FUTURE) {
      throw new DoubleError(
        400,
        "invalid_request_error",
        "timestamp must be within the past 35 calendar days or up to 5 minutes in the future",
        "timestamp",
      );
    }
    const identifier = str(params.identifier) ?? this.id("mtr");
    if (this.meterEvents.has(identifier)) {
      throw new DoubleError(400, "invalid_request_error", `An event already exists with identifier ${identifier}.`);
    }
    const event = {
      id: identifier,
      object: "billing.meter_event",
      created: now,
      event_name: eventName,
      identifier,
      livemode: false,
      payload,
      timestamp,
    };
    this.meterEvents.set(identifier, event);
    return event;
  }

  private hostedPage(method: string, url: URL, res: ServerResponse): void {
    const [, kind, id, action] = url.pathname.split("/");
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    const page = (html: string) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><html><body>${html}</body></html>`);
    };
    const redirect = (location: string) => {
      res.writeHead(303, { location });
      res.end();
    };
    const run = (work: Promise<unknown>, location: string) =>
      void work.then(
        () => redirect(location),
        (error: unknown) => {
          res.writeHead(400, { "content-type": "text/plain" });
          res.end(String(error));
        },
      );
    const notFound = (what: string) => {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end(`No such ${what}`);
    };
    if (kind === "checkout" && id) {
      const session = this.checkoutSessions.get(id);
      if (!session) notFound("checkout session");
      else if (method === "POST" && action === "pay") run(this.completeCheckout(id), String(session.success_url));
      else {
        page(
          `<h1>Stripe Checkout (test double)</h1><form method="post" action="/checkout/${id}/pay"><button>Subscribe</button></form>`,
        );
      }
      return;
    }
    if (kind === "invoice" && id) {
      const invoice = this.invoices.get(id);
      if (!invoice) notFound("invoice");
      else
        page(
          `<h1>Invoice ${String(invoice.number)} (test double)</h1><p>Total: ${Number(invoice.total) / 100} USD, ${String(invoice.status)}</p>`,
        );
      return;
    }
    if (kind === "portal" && id) {
      const session = this.portalSessions.get(id);
      if (!session) notFound("portal session");
      else if (method === "POST" && action === "confirm") {
        run(this.completePortalSession(id), String(session.return_url));
      } else {
        const flow = (session.flow as Json | null)?.type ?? "home";
        const label = flow === "subscription_update_confirm" ? "Confirm plan change" : "Cancel subscription";
        page(
          `<h1>Stripe Customer Portal (test double)</h1><form method="post" action="/portal/${id}/confirm"><button>${label}</button></form><a href="${String(session.return_url)}">Return</a>`,
        );
      }
      return;
    }
    res.writeHead(404).end();
  }

  // ─── Objects ────────────────────────────────────────────────────────────────────────────────

  private createSubscription(customer: string, lineItems: { price: string }[], metadata: Json): Obj {
    const start = this.now();
    const id = this.id("sub");
    const subscription: Obj = {
      id,
      object: "subscription",
      created: start,
      start_date: start,
      customer,
      status: "active",
      cancel_at_period_end: false,
      canceled_at: null,
      ended_at: null,
      metadata,
      livemode: false,
      items: { object: "list", data: [], has_more: false, url: `/v1/subscription_items?subscription=${id}` },
    };
    this.replaceItems(
      subscription,
      lineItems.map((item) => ({ price: item.price })),
      { start, end: start + THIRTY_DAYS },
    );
    this.subscriptions.set(id, subscription);
    return subscription;
  }

  private replaceItems(
    subscription: Obj,
    items: { id?: string; price: string }[],
    period?: { start: number; end: number },
  ): void {
    const existing = (subscription.items as { data: Json[] }).data;
    const first = existing[0];
    const start = period?.start ?? Number(first?.current_period_start ?? this.now());
    const end = period?.end ?? Number(first?.current_period_end ?? this.now() + THIRTY_DAYS);
    const kept = existing.filter((item) => !items.some((change) => change.id === item.id));
    const changed = items.map((change) => ({
      id: change.id ?? this.id("si"),
      object: "subscription_item",
      price: { id: change.price, object: "price", unit_amount: this.options.priceAmounts?.[change.price] ?? null },
      quantity: this.options.priceAmounts?.[change.price] === undefined ? undefined : 1,
      subscription: subscription.id,
      current_period_start: start,
      current_period_end: end,
    }));
    (subscription.items as { data: Json[] }).data = [...kept, ...changed];
  }

  private renew(subscription: Obj): void {
    for (const item of (subscription.items as { data: Json[] }).data) {
      item.current_period_start = item.current_period_end;
      item.current_period_end = Number(item.current_period_end) + THIRTY_DAYS;
    }
  }

  private cancel(subscriptionId: string): Obj {
    const subscription = this.mustGet(this.subscriptions, subscriptionId, "subscription");
    if (subscription.status === "canceled") {
      throw new DoubleError(400, "invalid_request_error", `Subscription ${subscriptionId} is already canceled`);
    }
    Object.assign(subscription, { status: "canceled", canceled_at: this.now(), ended_at: this.now() });
    return subscription;
  }

  private createInvoice(subscription: Obj, status: "paid" | "open"): Obj {
    const items = (subscription.items as { data: Json[] }).data;
    const total = items.reduce((sum, item) => sum + Number((item.price as Json).unit_amount ?? 0), 0);
    const id = this.id("in");
    const invoice: Obj = {
      id,
      object: "invoice",
      created: this.now(),
      customer: subscription.customer,
      number: `KILN-${String(this.invoices.size + 1).padStart(4, "0")}`,
      status,
      currency: "usd",
      total,
      amount_due: total,
      amount_paid: status === "paid" ? total : 0,
      amount_remaining: status === "paid" ? 0 : total,
      period_start: items[0]?.current_period_start,
      period_end: items[0]?.current_period_end,
      hosted_invoice_url: `${this.url}/invoice/${id}`,
      invoice_pdf: `${this.url}/invoice/${id}/pdf`,
      parent: {
        type: "subscription_details",
        quote_details: null,
        subscription_details: { subscription: subscription.id, metadata: subscription.metadata },
      },
      livemode: false,
    };
    this.invoices.set(id, invoice);
    return invoice;
  }

  private mustGet(map: Map<string, Obj>, id: string, what: string, param?: string): Obj {
    const found = map.get(id);
    if (!found)
      throw new DoubleError(404, "invalid_request_error", `No such ${what}: '${id}'`, param, "resource_missing");
    return found;
  }

  private id(prefix: string): string {
    return `${prefix}_${randomBytes(12).toString("hex")}`;
  }
}

function str(value: FormValue | undefined): string | null {
  return typeof value === "string" ? value : null;
}

function required(params: Record<string, FormValue>, name: string, param = name): string {
  const value = params[name];
  if (typeof value !== "string" || value === "") {
    throw new DoubleError(
      400,
      "invalid_request_error",
      `Missing required param: ${param}.`,
      param,
      "parameter_missing",
    );
  }
  return value;
}
