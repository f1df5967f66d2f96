// Saga Air demo page: flights and seat map, the booking form, and the saga drawn from
// its definition and lit from the booking's step log and execution history.
import { api, ApiError, session } from "./api.js";
import { drawMachine, parseCause, stateStatuses } from "./diagram.js";

const SEAT_LETTERS_TOP_DOWN = ["F", "E", "D", null, "C", "B", "A"]; // nose on the left: A is port side
const CABIN_LABEL = { FIRST: "First", BUSINESS: "Business", ECONOMY: "Economy" };
// What the map calls a seat status; any other status shows as its own name, in lower case.
const SEAT_LOOK = { AVAILABLE: "free" };

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

const state = {
  config: null, // GET /config: the stage, and the saga's vocabulary under `saga`
  customer: null, // GET /me once signed in: {username, loyalty_id}
  machines: null, // GET /statemachines, read once signed in (the route needs a token)
  pendingBooking: null, // a #booking=<id> the page was opened with, shown once signed in
  flights: [],
  // The booking's flights in travel order; legs[0] is the one picked in the flights table.
  // picks[p]: the seat passenger p chose on that leg (none: the saga assigns one).
  legs: [{ flightNumber: null, flight: null, seats: [], picks: [] }],
  cabin: null, // "any seat in a cabin": where every seat not picked is assigned
  party: [], // the passengers after the first (whose fields are the form's own): [{first_name, last_name}]
  account: null,
  tracking: null, // {bookingId, token, view, history, diagrams: {kind: drawing}, recovering}
  trackToken: 0,
  recoveries: {}, // booking id -> what the operator's recover answered (the local stage's /admin)
};

// --- Helpers ----------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function money(cents, currency = "USD") {
  return new Intl.NumberFormat("en-US", { style: "currency", currency }).format((cents || 0) / 100);
}

function whenUtc(iso, { date = true, weekday = true } = {}) {
  const d = new Date(iso);
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: "UTC" };
  if (date) Object.assign(opts, { day: "numeric", month: "short" });
  if (date && weekday) opts.weekday = "short";
  return new Intl.DateTimeFormat("en-GB", opts).format(d);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- The saga's vocabulary, as the server defines it (GET /config) ----------------------
// Step and compensation names, failure modes and statuses are spelled once, in
// chalicelib/vocabulary.py; the page reads them instead of keeping its own copies.
const vocabulary = () => state.config.saga;
const stepNames = () => vocabulary().steps.map((step) => step.name);
// In step order, so each compensation sits level with the step it undoes (a step after
// the pivot has none: it is never compensated); then those only a cancellation runs
// (RefundPayment, level with CapturePayment, whose capture it refunds).
const compensationMenus = () => {
  const undoing = vocabulary().steps.map((step) => step.compensation).filter(Boolean);
  return [...undoing, ...vocabulary().cancellation_steps.filter((name) => !undoing.includes(name))];
};
// What a booking's simulate_failure may name: its steps and the compensations its saga runs.
const bookingSagaTasks = () => [...stepNames(), ...vocabulary().compensation_order];
const isTerminal = (status) => vocabulary().terminal_statuses.includes(status);

// --- Errors next to their field -----------------------------------------------------------
function clearErrors(scope = document) {
  for (const node of $$("[data-error-for]", scope)) node.textContent = "";
  for (const node of $$(".invalid", scope)) node.classList.remove("invalid");
  $("#book-error").textContent = "";
}

function fieldInput(field) {
  return $(`[name="${CSS.escape(field)}"]`);
}

// Each problem ({field, message}) next to its field; one whose field has no place on the
// page (or that names none) goes to the fallback line, with its field's name.
function showProblems(problems, { fallback = "#book-error" } = {}) {
  const placed = new Set();
  const elsewhere = [];
  for (const { field, message } of problems) {
    const slot = field ? $(`[data-error-for="${CSS.escape(field)}"]`) : null;
    if (slot && placed.has(field)) continue; // the first problem of a field is the one to fix first
    if (slot) {
      slot.textContent = message;
      placed.add(field);
    } else {
      elsewhere.push(field ? `${field}: ${message}` : message);
    }
    const input = field && fieldInput(field);
    if (input) input.classList.add("invalid");
  }
  if (elsewhere.length) $(fallback).textContent = elsewhere.join(" ");
  const first = problems[0] && problems[0].field;
  const slot = first ? $(`[data-error-for="${CSS.escape(first)}"]`) : null;
  ((first && fieldInput(first)) || slot || $(fallback)).scrollIntoView({ block: "center", behavior: "smooth" });
}

function showError(field, message, options) {
  showProblems([{ field, message }], options);
}

function showGlobal(message) {
  const banner = $("#global-error");
  banner.textContent = message;
  banner.hidden = !message;
}

// --- Flights and the seat maps, one per leg -------------------------------------------------
const MAX_LEGS = 4; // the API's limits (chalicelib/models.py)
const MAX_PASSENGERS = 9;
const passengerCount = () => 1 + state.party.length;
const firstLeg = () => state.legs[0];
const isParty = () => passengerCount() > 1 || state.legs.length > 1;
const flightByNumber = (number) => state.flights.find((flight) => flight.flight_number === number) || null;

async function loadFlights() {
  const { flights } = await api("flights");
  state.flights = flights;
  renderFlights();
}

function renderFlights() {
  const body = $("#flights-body");
  body.replaceChildren(...state.flights.map((flight) => {
    const ratio = flight.seats_total ? flight.seats_available / flight.seats_total : 0;
    return h("tr", {
      class: flight.flight_number === firstLeg().flightNumber ? "selected" : "",
      "data-flight": flight.flight_number, "data-testid": `flight-${flight.flight_number}`, tabindex: "0",
      onclick: () => pickFlight(flight.flight_number),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pickFlight(flight.flight_number); } },
    },
    h("td", { class: "mono strong" }, flight.flight_number),
    h("td", {}, h("span", { class: "route" }, flight.origin, h("span", { class: "arrow" }, "→"), flight.destination)),
    h("td", { class: "muted" }, whenUtc(flight.departure, { weekday: false })),
    h("td", { class: "num" },
      h("span", { class: "avail", "data-testid": `avail-${flight.flight_number}` }, String(flight.seats_available)),
      h("span", { class: "meter" }, h("span", { style: `width:${Math.round(ratio * 100)}%` }))));
  }));
}

// The flight already shown is not read again: its map, redrawn under a click on a seat,
// would swallow that click.
function pickFlight(flightNumber) {
  if (flightNumber === firstLeg().flightNumber && firstLeg().flight) return;
  selectFlight(flightNumber);
}

function selectFlight(flightNumber, options) {
  return selectLeg(0, flightNumber, options);
}

async function selectLeg(index, flightNumber, { keepChoice = false } = {}) {
  if (!flightNumber) return;
  const leg = state.legs[index];
  if (flightNumber !== leg.flightNumber && !keepChoice) {
    leg.picks = [];
    if (index === 0) state.cabin = null;
  }
  const changed = flightNumber !== leg.flightNumber;
  leg.flightNumber = flightNumber;
  if (index === 0) renderFlights();
  if (changed) fitLaterLegs(index);
  try {
    const [flight, seatMap] = await Promise.all([
      api(`flights/${encodeURIComponent(flightNumber)}`),
      api(`flights/${encodeURIComponent(flightNumber)}/seats`),
    ]);
    if (state.legs[index] !== leg || leg.flightNumber !== flightNumber) return;
    leg.flight = flight;
    leg.seats = seatMap.seats;
    // A chosen seat someone else took meanwhile is no longer a choice.
    leg.picks = leg.picks.map((seat) => {
      const found = seat && leg.seats.find((s) => s.seat === seat);
      return found && found.status === "AVAILABLE" ? seat : null;
    });
    if (index === 0) renderFlightSummary();
    renderSeatMap(index);
    renderChoice();
  } catch (exc) {
    showGlobal(`Could not load flight ${flightNumber}: ${exc.message}`);
  }
}

// --- Further legs: a return or a connection, each departing after the leg before ---------
function candidatesFor(index) {
  const before = flightByNumber(state.legs[index - 1].flightNumber);
  if (!before) return [];
  const taken = state.legs.slice(0, index).map((leg) => leg.flightNumber);
  return state.flights.filter((flight) => Date.parse(flight.departure) > Date.parse(before.departure)
    && !taken.includes(flight.flight_number));
}

// The likeliest next leg: one leaving from where the leg before lands (a return or a connection).
function defaultFor(index) {
  const before = flightByNumber(state.legs[index - 1].flightNumber);
  const candidates = candidatesFor(index);
  return (candidates.find((flight) => before && flight.origin === before.destination) || candidates[0] || null);
}

// After leg `index` changed, a later leg that no longer departs after the one before it
// moves to the next flight that does; without one, it and the legs after it go.
function fitLaterLegs(index) {
  for (let i = index + 1; i < state.legs.length; i += 1) {
    const leg = state.legs[i];
    if (candidatesFor(i).some((flight) => flight.flight_number === leg.flightNumber)) continue;
    const next = defaultFor(i);
    if (!next) {
      state.legs.splice(i);
      break;
    }
    leg.flightNumber = next.flight_number;
    leg.flight = null;
    leg.seats = [];
    leg.picks = [];
    selectLeg(i, next.flight_number, { keepChoice: true });
  }
  renderLegCards();
}

function addLeg() {
  const index = state.legs.length;
  if (index >= MAX_LEGS) return;
  const next = defaultFor(index);
  if (!next) return;
  state.legs.push({ flightNumber: null, flight: null, seats: [], picks: [] });
  renderLegCards();
  selectLeg(index, next.flight_number);
}

function removeLeg() {
  if (state.legs.length < 2) return;
  state.legs.pop();
  renderLegCards();
  renderChoice();
}

function renderLegCards() {
  const cards = state.legs.slice(1).map((leg, offset) => {
    const index = offset + 1;
    const before = state.legs[index - 1].flightNumber;
    const last = index === state.legs.length - 1;
    return h("section", { class: "card leg-card", "data-testid": `leg-${index}`, "data-leg": index },
      h("div", { class: "card-head" },
        h("h2", {}, h("span", { class: "step-no" }, `2.${index}`), ` Flight ${index + 1}`),
        h("div", { class: "flight-summary", id: `flight-summary-${index}`, "data-testid": `flight-summary-${index}` })),
      h("div", { class: "leg-pick" },
        h("label", { for: `leg-flight-${index}` }, `Flight ${index + 1}, departing after ${before}`),
        h("select", {
          id: `leg-flight-${index}`, "data-testid": `leg-flight-${index}`,
          onchange: (event) => selectLeg(index, event.target.value),
        }, ...candidatesFor(index).map((flight) => h("option", {
          value: flight.flight_number, selected: flight.flight_number === leg.flightNumber,
        }, `${flight.flight_number} ${flight.origin}→${flight.destination} · ${whenUtc(flight.departure, { weekday: false })}`))),
        last ? h("button", { type: "button", class: "btn btn-ghost btn-small", "data-testid": `remove-leg-${index}`, onclick: removeLeg },
          `Remove flight ${index + 1}`) : null),
      h("div", { class: "seatmap-wrap" },
        h("div", { class: "seatmap", id: `seatmap-${index}`, "data-testid": `seatmap-${index}`, "aria-label": `Seat map, flight ${index + 1}` })),
      h("p", { class: "choice-text", id: `choice-text-${index}`, "data-testid": `seat-choice-${index}` }));
  });
  $("#more-legs").replaceChildren(...cards);
  state.legs.forEach((leg, index) => { if (index > 0 && leg.flight) renderSeatMap(index); });
  const add = $("#add-leg");
  add.disabled = state.legs.length >= MAX_LEGS || !defaultFor(state.legs.length);
  renderFaultLegs();
  renderChoice();
}

function renderFlightSummary() {
  const flight = firstLeg().flight;
  $("#flight-summary").replaceChildren(
    h("span", { class: "mono strong" }, flight.flight_number),
    h("span", { class: "route big" }, flight.origin, h("span", { class: "arrow" }, "→"), flight.destination),
    h("span", { class: "muted" }, `${whenUtc(flight.departure)} UTC`),
    h("span", { class: "muted" }, `${flight.seats_available} of ${flight.seats_total} seats free`),
  );
  $("#cabin-choices").replaceChildren(...Object.keys(flight.availability).map((cabin) => {
    const fare = flight.fares[cabin];
    const free = flight.availability[cabin];
    return h("button", {
      type: "button", class: `cabin-btn cabin-${cabin.toLowerCase()}${state.cabin === cabin ? " active" : ""}`,
      "data-testid": `any-seat-${cabin}`, "data-cabin": cabin, disabled: free === 0,
      "aria-pressed": state.cabin === cabin ? "true" : "false",
      onclick: () => chooseCabin(cabin),
    },
    h("span", { class: "cabin-name" }, `Any ${CABIN_LABEL[cabin] || cabin} seat`),
    h("span", { class: "cabin-meta" }, `${money(fare.amount, fare.currency)} · ${free} free`));
  }));
}

function renderLegSummary(index) {
  const flight = state.legs[index].flight;
  const slot = $(`#flight-summary-${index}`);
  if (!slot || !flight) return;
  slot.replaceChildren(
    h("span", { class: "route big" }, flight.origin, h("span", { class: "arrow" }, "→"), flight.destination),
    h("span", { class: "muted" }, `${whenUtc(flight.departure)} UTC`),
    h("span", { class: "muted" }, `${flight.seats_available} of ${flight.seats_total} seats free`));
}

// The tracked booking's seats on `flightNumber` (every leg of a party's).
function bookingSeatsOn(flightNumber) {
  const view = state.tracking && state.tracking.view;
  if (!view) return new Set();
  if (Array.isArray(view.legs) && view.legs.length) {
    const leg = view.legs.find((item) => item.flight_number === flightNumber);
    return new Set(leg ? leg.seats.map((item) => item.seat) : []);
  }
  return new Set(view.flight_number === flightNumber && view.seat ? [view.seat] : []);
}

function renderSeatMap(index = 0) {
  const leg = state.legs[index];
  const container = index === 0 ? $("#seatmap") : $(`#seatmap-${index}`);
  if (!leg || !container) return;
  if (index > 0) renderLegSummary(index);
  const mine = bookingSeatsOn(leg.flightNumber);
  const party = passengerCount() > 1;
  const rows = new Map();
  for (const seat of leg.seats) {
    const row = Number.parseInt(seat.seat, 10);
    if (!rows.has(row)) rows.set(row, { cabin: seat.cabin, seats: {} });
    rows.get(row).seats[seat.seat.slice(-1)] = seat;
  }
  const cabins = [];
  for (const [row, info] of [...rows.entries()].sort((a, b) => a[0] - b[0])) {
    let section = cabins[cabins.length - 1];
    if (!section || section.cabin !== info.cabin) {
      section = { cabin: info.cabin, rows: [] };
      cabins.push(section);
    }
    section.rows.push([row, info]);
  }
  const letters = h("div", { class: "letters" }, ...SEAT_LETTERS_TOP_DOWN.map((letter) => h("span", { class: letter ? "" : "aisle-gap" }, letter || "")));
  const sections = cabins.map((section) => {
    const first = section.rows[0][0];
    const last = section.rows[section.rows.length - 1][0];
    const free = section.rows.reduce((n, [, info]) => n + Object.values(info.seats).filter((s) => s.status === "AVAILABLE").length, 0);
    return h("div", { class: `cabin cabin-${section.cabin.toLowerCase()}`, "data-testid": `cabin-${section.cabin}` },
      h("div", { class: "cabin-label", title: `rows ${first}–${last}` }, h("b", {}, CABIN_LABEL[section.cabin] || section.cabin), h("span", {}, `${free} free`)),
      h("div", { class: "cabin-rows" }, ...section.rows.map(([row, info]) => h("div", { class: "seat-col" },
        ...SEAT_LETTERS_TOP_DOWN.map((letter) => {
          if (!letter) return h("span", { class: "aisle" }, String(row));
          const seat = info.seats[letter];
          if (!seat) return h("span", { class: "seat none" });
          const status = SEAT_LOOK[seat.status] || seat.status.toLowerCase();
          const passenger = leg.picks.indexOf(seat.seat);
          const selected = passenger >= 0;
          const isMine = mine.has(seat.seat) && status !== "free";
          const whose = selected && party ? ` · passenger ${passenger + 1}` : "";
          return h("button", {
            type: "button",
            class: `seat ${status}${selected ? " selected" : ""}${isMine ? " mine" : ""}`,
            "data-seat": seat.seat, "data-status": status, "data-cabin": seat.cabin,
            "data-selected": selected ? "true" : null,
            "data-passenger": selected && party ? String(passenger) : null,
            disabled: status !== "free",
            title: `Seat ${seat.seat} · ${CABIN_LABEL[seat.cabin]} · ${status}${isMine ? " (this booking)" : ""}${whose}`,
            "aria-label": `Seat ${seat.seat}, ${seat.cabin.toLowerCase()}, ${status}${whose}`,
            onclick: () => chooseSeat(index, seat.seat),
          }, selected && party ? String(passenger + 1) : letter);
        })))));
  });
  container.replaceChildren(h("div", { class: "nose" }), letters, ...sections, h("div", { class: "tail" }));
}

// One passenger per click: a free seat goes to the first passenger without one on this
// leg (with everyone seated, the last passenger moves); a picked seat is given back.
function chooseSeat(index, seat) {
  const leg = state.legs[index];
  const at = leg.picks.indexOf(seat);
  if (at >= 0) leg.picks[at] = null;
  else {
    let passenger = 0;
    while (passenger < passengerCount() - 1 && leg.picks[passenger]) passenger += 1;
    leg.picks[passenger] = seat;
  }
  state.cabin = null; // the chosen seats' cabin is the booking's
  clearFieldError("seat");
  clearFieldError("cabin");
  renderAllSeatMaps();
  renderFlightSummary();
  renderChoice();
}

function chooseCabin(cabin) {
  state.cabin = state.cabin === cabin ? null : cabin;
  for (const leg of state.legs) leg.picks = [];
  clearFieldError("seat");
  clearFieldError("cabin");
  renderAllSeatMaps();
  renderFlightSummary();
  renderChoice();
}

function renderAllSeatMaps() {
  state.legs.forEach((leg, index) => { if (leg.flight) renderSeatMap(index); });
}

function clearFieldError(field) {
  const slot = $(`[data-error-for="${CSS.escape(field)}"]`);
  if (slot) slot.textContent = "";
  const input = fieldInput(field);
  if (input) input.classList.remove("invalid");
}

const anyPick = () => state.legs.some((leg) => leg.picks.some(Boolean));

function chosenCabin() {
  if (state.cabin) return state.cabin;
  for (const leg of state.legs) {
    const picked = leg.picks.find(Boolean);
    const seat = picked && leg.seats.find((s) => s.seat === picked);
    if (seat) return seat.cabin;
  }
  return null;
}

function renderChoice() {
  const text = $("#choice-text");
  const leg = firstLeg();
  const seat = leg.picks[0];
  if (!isParty()) {
    if (seat) text.replaceChildren("Seat ", h("b", { "data-testid": "chosen-seat" }, seat), ` (${CABIN_LABEL[chosenCabin()]}) on ${leg.flightNumber}`);
    else if (state.cabin) text.replaceChildren("Any free seat in ", h("b", {}, CABIN_LABEL[state.cabin]), ` on ${leg.flightNumber}: the saga picks one`);
    else text.textContent = "No seat chosen: click a free seat, or take any seat in a cabin.";
  } else {
    state.legs.forEach((_, index) => {
      const slot = index === 0 ? text : $(`#choice-text-${index}`);
      if (slot) slot.replaceChildren(...legChoice(index));
    });
  }
  renderPrice();
}

// A party's seats on one leg: each passenger's pick, or "assigned" (in the booking's cabin).
function legChoice(index) {
  const leg = state.legs[index];
  const cabin = chosenCabin();
  if (!cabin) return ["No seat chosen: click a free seat for each passenger in turn, or take any seat in a cabin."];
  const parts = [];
  for (let passenger = 0; passenger < passengerCount(); passenger += 1) {
    const seat = leg.picks[passenger];
    parts.push(h("span", { class: "pick", "data-testid": `pick-${index}-${passenger}` },
      `${passenger + 1}: `, seat ? h("b", {}, seat) : h("i", {}, "assigned")));
  }
  return [`${leg.flightNumber || ""} · ${CABIN_LABEL[cabin]} · `, ...parts.flatMap((part, i) => (i ? [" ", part] : [part]))];
}

function renderPrice() {
  const price = $("#price");
  const cabin = chosenCabin();
  const legs = state.legs.filter((leg) => leg.flight);
  if (!legs.length || legs.length < state.legs.length || !cabin) {
    price.replaceChildren(h("span", { class: "muted" }, "Choose a seat or a cabin to see the fare."));
    return;
  }
  // Fare = over the legs, the cabin's fare for each passenger (chalicelib/models.py party_fare).
  const each = legs.map((leg) => leg.flight.fares[cabin]);
  const currency = each[0].currency;
  const fare = each.reduce((sum, legFare) => sum + legFare.amount, 0) * passengerCount();
  const points = Number.parseInt($("#points").value, 10) || 0;
  const discount = Math.min(points, fare); // 100 points = 1 USD = 100 cents
  const times = isParty() ? ` × ${passengerCount()} passenger${passengerCount() > 1 ? "s" : ""} × ${legs.length} flight${legs.length > 1 ? "s" : ""}` : "";
  price.replaceChildren(
    h("span", {}, `${CABIN_LABEL[cabin]} fare `, h("b", { "data-testid": "fare" }, money(fare, currency)),
      times ? h("span", { class: "muted" }, ` (${each.map((legFare) => money(legFare.amount, currency)).join(" + ")})${times}`) : null),
    ...(discount > 0 ? [h("span", {}, ` − ${discount.toLocaleString("en-US")} points `, h("b", {}, money(discount, currency)))] : []),
    h("span", { class: "due" }, " = you pay ", h("b", { "data-testid": "amount-due" }, money(fare - discount, currency))),
  );
}

// --- The party: the first passenger's fields are the form's; the others are added here ---
function addPassenger() {
  if (passengerCount() >= MAX_PASSENGERS) return;
  state.party.push({ first_name: "", last_name: "" });
  renderParty();
  const index = passengerCount() - 1;
  $(`#first-name-${index}`).focus();
}

function removePassenger(index) {
  state.party.splice(index - 1, 1);
  for (const leg of state.legs) leg.picks.splice(index, 1);
  renderParty();
}

function renderParty() {
  $("#party").replaceChildren(...state.party.map((passenger, offset) => {
    const index = offset + 1;
    const input = (key, label, autocomplete) => {
      const field = `passengers[${index}].${key}`;
      return h("div", { class: "field" },
        h("label", { for: `${key.replace("_", "-")}-${index}` }, label),
        h("input", {
          id: `${key.replace("_", "-")}-${index}`, name: field, "data-testid": `${key.replace("_", "-")}-${index}`,
          autocomplete, value: passenger[key],
          oninput: (event) => { passenger[key] = event.target.value; clearFieldError(field); },
        }),
        h("p", { class: "field-error", "data-error-for": field, "data-testid": `error-${field}` }));
    };
    return h("fieldset", { class: "party-member", "data-testid": `passenger-${index}` },
      h("legend", {}, `Passenger ${index + 1}`),
      input("first_name", "First name", "off"),
      input("last_name", "Last name", "off"),
      h("button", { type: "button", class: "btn btn-ghost btn-small", "data-testid": `remove-passenger-${index}`,
        onclick: () => removePassenger(index) }, `Remove passenger ${index + 1}`));
  }));
  $("#add-passenger").disabled = passengerCount() >= MAX_PASSENGERS;
  $("#party-count").textContent = passengerCount() > 1 ? `${passengerCount()} passengers` : "";
  renderAllSeatMaps();
  renderChoice();
}

// --- Loyalty --------------------------------------------------------------------------
let loyaltyTimer = null;

function scheduleLoyaltyLookup() {
  clearTimeout(loyaltyTimer);
  loyaltyTimer = setTimeout(lookupLoyalty, 300);
}

async function lookupLoyalty() {
  const input = $("#loyalty-id");
  const id = input.value.trim().toUpperCase();
  const out = $("#loyalty-balance");
  // No clearFieldError here: the field's input handler already clears its error on
  // every keystroke and endSession on sign-out. This lookup runs 300 ms after the
  // last keystroke, and clearing then would wipe an error Book has just shown.
  state.account = null;
  if (!id) {
    out.textContent = "";
    return;
  }
  if (!/^[A-Z0-9]{2,32}$/.test(id)) {
    out.textContent = "";
    showError("loyalty_id", "letters and digits only, e.g. FF0001");
    return;
  }
  // A balance is the account owner's to see: GET /loyalty/{id} needs the token.
  if (!state.customer) {
    out.textContent = "Sign in to see the balance.";
    return;
  }
  out.textContent = "Looking up…";
  try {
    const account = await api(`loyalty/${encodeURIComponent(id)}`);
    if ($("#loyalty-id").value.trim().toUpperCase() !== id) return;
    state.account = account;
    out.replaceChildren(h("span", { class: "ok-dot" }), account.name ? `${account.name} · ` : "",
      h("b", { "data-testid": "points-balance" }, account.points_balance.toLocaleString("en-US")), " points");
  } catch (exc) {
    if ($("#loyalty-id").value.trim().toUpperCase() !== id) return;
    out.textContent = "";
    const message = exc.status === 404 || exc.status >= 500 && !exc.body.error
      ? `No loyalty account ${id} could be found${exc.status >= 500 ? ` (${exc.message})` : ""}`
      : exc.message;
    showError("loyalty_id", message);
  }
}

// --- Failure injection ----------------------------------------------------------------
function renderFaults() {
  const row = (name) => h("label", { class: "fault-row", "data-fault": name },
    h("span", { class: "fault-name" }, name),
    h("select", {
      name: `fault.${name}`, "data-testid": `fault-${name}`, "data-step": name,
      onchange: (event) => event.target.closest(".fault-row").classList.toggle("armed", event.target.value !== ""),
    },
    h("option", { value: "" }, "none"), ...vocabulary().failure_modes.map((mode) => h("option", { value: mode }, mode))),
    perLeg.includes(name) ? h("select", {
      name: `fault-leg.${name}`, "data-testid": `fault-leg-${name}`, "data-leg-of": name, class: "fault-leg",
      "aria-label": `Which leg ${name} fails on`,
    }) : null);
  // A step run per leg (a Map over the legs) may fail on one leg only.
  const perLeg = vocabulary().steps.filter((step) => step.per_leg).map((step) => step.name);
  $("#faults-forward").replaceChildren(...stepNames().map(row));
  $("#faults-compensation").replaceChildren(...compensationMenus().map(row));
  renderFaultLegs();
}

// The leg menus follow the booking's flights: every leg, or one of them (0-based, as the API counts).
function renderFaultLegs() {
  for (const select of $$("select[data-leg-of]")) {
    const chosen = select.value;
    select.replaceChildren(h("option", { value: "" }, "every leg"),
      ...state.legs.map((leg, index) => h("option", { value: String(index) }, `leg ${index} · ${leg.flightNumber || "…"}`)));
    select.value = Number(chosen) < state.legs.length ? chosen : "";
  }
}

// The armed fault menus as {name: mode} (or {name: {leg, mode}}); only those in `names` when given.
function chosenFaults(names = null) {
  if (!state.config || !state.config.fault_injection) return {};
  const out = {};
  for (const select of $$("select[data-step]")) {
    const name = select.dataset.step;
    if (!select.value || (names && !names.includes(name))) continue;
    const leg = $(`select[data-leg-of="${CSS.escape(name)}"]`);
    out[name] = leg && leg.value !== "" ? { leg: Number(leg.value), mode: select.value } : select.value;
  }
  return out;
}

// --- Booking ----------------------------------------------------------------------------
function validate() {
  // The same rules the API applies, checked first so a typo costs no round trip.
  const problems = [];
  const wrong = (field, message) => problems.push({ field, message });
  const first = $("#first-name").value.trim();
  const last = $("#last-name").value.trim();
  const email = $("#email").value.trim();
  const loyaltyId = $("#loyalty-id").value.trim().toUpperCase();
  const pointsText = $("#points").value.trim();
  if (!first) wrong("passenger.first_name", "Enter the passenger's first name.");
  if (!last) wrong("passenger.last_name", "Enter the passenger's last name.");
  if (email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) wrong("passenger.email", "This is not an email address.");
  if (loyaltyId && !/^[A-Z0-9]{2,32}$/.test(loyaltyId)) wrong("loyalty_id", "Letters and digits only, e.g. FF0001.");
  let points = 0;
  if (pointsText) {
    if (!/^\d+$/.test(pointsText)) wrong("points_to_redeem", "Points must be a whole number, 0 or more.");
    else points = Number.parseInt(pointsText, 10);
  }
  if (points > 0 && !loyaltyId) wrong("loyalty_id", "Redeeming points needs a loyalty account.");
  if (state.account && points > state.account.points_balance) {
    wrong("points_to_redeem", `The account has only ${state.account.points_balance.toLocaleString("en-US")} points.`);
  }
  state.party.forEach((passenger, offset) => {
    const where = `passengers[${offset + 1}]`;
    if (!passenger.first_name.trim()) wrong(`${where}.first_name`, `Enter passenger ${offset + 2}'s first name.`);
    if (!passenger.last_name.trim()) wrong(`${where}.last_name`, `Enter passenger ${offset + 2}'s last name.`);
  });
  if (!anyPick() && !state.cabin) wrong("seat", "Pick a free seat on the map, or take any seat in a cabin.");
  return { problems, points, loyaltyId, first, last, email };
}

async function book(event) {
  event.preventDefault();
  clearErrors();
  showGlobal("");
  // Signed out, a booking would only come back 401: ask for the sign-in instead.
  if (!state.customer) {
    askToSignIn("#book-error", "Sign in to book: a booking belongs to the customer who makes it.");
    return;
  }
  const { problems, points, loyaltyId, first, last, email } = validate();
  if (problems.length) {
    showProblems(problems);
    return;
  }
  const lead = { first_name: first, last_name: last, ...(email ? { email } : {}) };
  const body = { payment: { card_token: $('input[name="card"]:checked').value } };
  if (!isParty()) {
    // One passenger on one flight: the one-seat form of the API, as ever.
    body.flight_number = firstLeg().flightNumber;
    body.passenger = lead;
    if (firstLeg().picks[0]) body.seat = firstLeg().picks[0];
    else body.cabin = state.cabin;
  } else {
    body.flights = state.legs.map((leg) => leg.flightNumber);
    const people = [lead, ...state.party.map((p) => ({ first_name: p.first_name.trim(), last_name: p.last_name.trim() }))];
    body.passengers = people.map((person, index) => {
      const seats = {};
      for (const leg of state.legs) if (leg.picks[index]) seats[leg.flightNumber] = leg.picks[index];
      return Object.keys(seats).length ? { ...person, seats } : person;
    });
    if (state.cabin) body.cabin = state.cabin;
  }
  if (loyaltyId) body.loyalty_id = loyaltyId;
  if (points) body.points_to_redeem = points;
  const faults = chosenFaults(bookingSagaTasks()); // a cancellation-only menu waits for the cancel
  if (Object.keys(faults).length) body.simulate_failure = faults;

  const button = $("#book");
  button.disabled = true;
  button.textContent = "Booking…";
  try {
    const created = await api("bookings", { method: "POST", body });
    startTracking(created.booking_id, { scroll: true });
  } catch (exc) {
    // The session ended (the sign-in box says why): nothing was booked.
    if (exc instanceof ApiError && exc.status === 401) askToSignIn("#book-error", "Not booked: sign in again, then book.");
    // A 400 lists every invalid field; show each where it belongs.
    else if (exc instanceof ApiError) showProblems(exc.problems);
    else throw exc;
  } finally {
    button.disabled = false;
    renderBookButton();
  }
}

function renderBookButton() {
  $("#book").textContent = state.customer ? "Book" : "Sign in to book";
}

// --- Tracking a booking: poll its view and history until it settles ---------------------
function startTracking(bookingId, { scroll = false } = {}) {
  state.trackToken += 1;
  state.tracking = { bookingId, token: state.trackToken, view: null, history: null, diagrams: {}, replaying: false };
  history.replaceState(null, "", `#booking=${bookingId}`);
  const saga = $("#saga");
  saga.hidden = false;
  $("#diagrams").replaceChildren();
  $("#timeline").replaceChildren();
  $("#outcome").replaceChildren(h("p", { class: "muted" }, "Starting the saga…"));
  $("#saga-booking-id").textContent = bookingId;
  $("#saga-correlation-id").textContent = "…";
  $("#saga-summary").hidden = true;
  delete document.body.dataset.sagaSettled; // set again once this booking has settled
  setStatus("PENDING");
  if (scroll) saga.scrollIntoView({ behavior: "smooth", block: "start" });
  poll(state.tracking);
}

async function poll(tracking) {
  const started = Date.now();
  for (;;) {
    let view;
    let hist;
    try {
      // The history first, then the view: when the history says no execution is running,
      // the view read after it holds every write the sagas made (read together, the view
      // could predate the last step, the capture after the pivot, say).
      hist = await api(`bookings/${tracking.bookingId}/history`);
      view = await api(`bookings/${tracking.bookingId}`);
    } catch (exc) {
      if (tracking.token !== state.trackToken) return;
      $("#outcome").replaceChildren(h("p", { class: "field-error" }, exc.message));
      setStatus("ERROR");
      return;
    }
    if (tracking.token !== state.trackToken) return;
    tracking.view = view;
    tracking.history = hist;
    renderSaga(tracking);
    const settled = isTerminal(view.status) && hist.executions.every((execution) => execution.status !== "RUNNING");
    if (settled) {
      await refreshAfterSaga(view);
      return;
    }
    await sleep(Date.now() - started < 15000 ? 200 : 1000);
  }
}

async function refreshAfterSaga(view) {
  // The seat may have been released by a compensation: show the map as it is now.
  const tasks = [loadFlights()];
  if (view.flight_number === firstLeg().flightNumber) {
    tasks.push(...state.legs.map((leg, index) => selectLeg(index, leg.flightNumber, { keepChoice: true })));
  } else tasks.push(selectFlight(view.flight_number));
  if (view.loyalty_id && $("#loyalty-id").value.trim().toUpperCase() === view.loyalty_id) tasks.push(lookupLoyalty());
  await Promise.allSettled(tasks);
  document.body.dataset.sagaSettled = view.booking_id;
}

function setStatus(status) {
  const pill = $("#booking-status");
  pill.textContent = status;
  pill.dataset.status = status;
}

function executionOf(tracking, kind) {
  return (tracking.history && tracking.history.executions || []).find((execution) => execution.kind === kind) || null;
}

function renderSaga(tracking) {
  const { view } = tracking;
  $("#saga-correlation-id").textContent = view.correlation_id;
  setStatus(view.status);
  renderSummary(tracking);
  const kinds = ["booking"];
  if (executionOf(tracking, "cancellation") || view.status === "CANCELLING" || view.status === "CANCELLED") kinds.push("cancellation");
  for (const kind of kinds) {
    if (!tracking.diagrams[kind]) tracking.diagrams[kind] = createDiagram(tracking, kind);
    if (!tracking.replaying) lightDiagram(tracking, kind);
  }
  renderOutcome(tracking);
  renderTimeline(tracking);
}

function compensationNames(view) {
  // What the booking's step log calls a compensation (the bookkeeping tasks are not ones).
  return new Set([...vocabulary().compensation_order, ...(view.compensations || []).map((entry) => entry.name)]);
}

function stepLogFor(view, kind) {
  const log = {};
  const entries = kind === "booking" ? [...view.steps, ...view.compensations] : view.compensations;
  for (const entry of entries) log[entry.name] = entry;
  return log;
}

function statusesFor(tracking, kind, events, ended) {
  const definition = state.machines[kind].definition;
  const view = tracking.view;
  // The booking's log is shared by both executions; it only sharpens a state's status
  // once that execution has ended.
  return stateStatuses(definition, events, {
    ended,
    compensations: compensationNames(view),
    stepLog: ended ? stepLogFor(view, kind) : {},
  });
}

function lightDiagram(tracking, kind) {
  const execution = executionOf(tracking, kind);
  const events = execution ? execution.events : [];
  const ended = execution ? execution.status !== "RUNNING" : false;
  const entry = tracking.diagrams[kind];
  entry.drawing.update({ ...statusesFor(tracking, kind, events, ended), legs: mapLegs(tracking, kind) });
  entry.figure.dataset.execution = execution ? execution.status : "NOT_STARTED";
  entry.execStatus.textContent = execution ? execution.status : "not started";
  entry.execStatus.dataset.status = execution ? execution.status : "PENDING";
  entry.replay.disabled = !ended;
  renderMapLegs(tracking, kind, entry.legs);
}

// The seat Maps' legs, from the step log's per-leg items: which legs ReserveSeats held or
// failed, and which ReleaseSeats released (the diagram draws each Map as one task).
const LEG_WORD = {
  ReserveSeats: { SUCCEEDED: "held", FAILED: "failed", TIMED_OUT: "timed out", RUNNING: "holding…" },
  ReleaseSeats: { COMPENSATED: "released", SUCCEEDED: "released", FAILED: "release failed", TIMED_OUT: "timed out", RUNNING: "releasing…" },
};

// Per seat Map, its legs for the diagram's dots: [{leg, status, label}].
function mapLegs(tracking, kind) {
  const view = tracking.view;
  const entries = kind === "booking" ? [...view.steps, ...view.compensations] : view.compensations;
  const legs = {};
  for (const entry of entries) {
    if (!Array.isArray(entry.items) || !LEG_WORD[entry.name]) continue;
    legs[entry.name] = entry.items.map((item) => ({
      leg: item.leg, status: item.status.toLowerCase(),
      label: `leg ${item.leg} · ${item.flight_number}: ${LEG_WORD[entry.name][item.status] || item.status.toLowerCase()}`,
    }));
  }
  return legs;
}

function renderMapLegs(tracking, kind, slot) {
  const view = tracking.view;
  if (!slot || !view) return;
  const entries = kind === "booking" ? [...view.steps, ...view.compensations] : view.compensations;
  const maps = entries.filter((entry) => Array.isArray(entry.items) && LEG_WORD[entry.name]);
  const legs = (view.legs && view.legs.length) ? view.legs : [{ flight_number: view.flight_number }];
  if (!maps.some((entry) => entry.items.length)) {
    slot.replaceChildren();
    slot.hidden = true;
    return;
  }
  slot.hidden = false;
  const itemOf = (entry, leg) => entry.items.find((item) => item.leg === leg) || null;
  slot.replaceChildren(
    h("table", { class: "map-legs-table" },
      h("caption", {}, "The seat Maps, leg by leg"),
      h("thead", {}, h("tr", {}, h("th", {}, "Leg"), ...maps.map((entry) => h("th", {}, entry.name)))),
      h("tbody", {}, ...legs.map((leg, index) => h("tr", { "data-testid": `map-leg-${kind}-${index}`, "data-leg": index },
        h("th", { class: "mono" }, `${index} · ${leg.flight_number}`),
        ...maps.map((entry) => {
          const item = itemOf(entry, index);
          const word = item ? (LEG_WORD[entry.name][item.status] || item.status.toLowerCase()) : "—";
          const seats = item && item.seats ? item.seats.map((seat) => seat.seat).join(" ") : "";
          return h("td", {
            "data-map": entry.name, "data-status": item ? item.status.toLowerCase() : "not-run",
            "data-testid": `map-leg-${kind}-${index}-${entry.name}`,
            title: item && item.error ? `${item.error.error}: ${item.error.cause}` : null,
          }, h("span", { class: `tag tag-${item ? item.status.toLowerCase() : "skipped"}` }, word),
          seats ? h("span", { class: "muted mono small" }, ` ${seats}`) : null,
          item && item.error ? h("span", { class: "err small" }, ` ${item.error.error}`) : null);
        }))))));
}

function createDiagram(tracking, kind) {
  const machine = state.machines[kind];
  const replay = h("button", { type: "button", class: "btn btn-ghost btn-small", "data-testid": `replay-${kind}`, disabled: true,
    onclick: () => replayDiagram(tracking, kind) }, "▶ Replay");
  const execStatus = h("span", { class: "exec-status" });
  const body = h("div", { class: "machine-wrap" });
  const legs = h("div", { class: "map-legs", "data-testid": `map-legs-${kind}`, hidden: true });
  const title = kind === "booking" ? "Booking state machine" : "Cancellation state machine";
  const figure = h("figure", { class: "diagram", "data-testid": `diagram-${kind}`, "data-machine": kind },
    h("figcaption", {},
      h("div", {}, h("b", {}, title), " ", execStatus,
        h("div", { class: "arn mono", title: "GET /statemachines" }, machine.name)),
      replay),
    body, legs);
  $("#diagrams").append(figure);
  const drawing = drawMachine(body, machine.definition, {
    machine: kind, singleLaneTitle: kind === "cancellation" ? "Cancellation path · compensations only" : "Path",
  });
  return { figure, drawing, replay, execStatus, legs };
}

async function replayDiagram(tracking, kind) {
  const execution = executionOf(tracking, kind);
  if (!execution || tracking.replaying) return;
  tracking.replaying = true;
  const entry = tracking.diagrams[kind];
  entry.replay.disabled = true;
  const events = execution.events;
  const rows = $$(`#timeline [data-kind="${kind}"]`);
  for (let i = 0; i <= events.length; i += 1) {
    if (tracking.token !== state.trackToken) return;
    entry.drawing.update(statusesFor(tracking, kind, events.slice(0, i), false));
    rows.forEach((row, index) => row.classList.toggle("replay-current", index === i - 1));
    const type = i > 0 ? events[i - 1].type : "";
    await sleep(/StateEntered|Failed|TimedOut/.test(type) ? 420 : 110);
  }
  rows.forEach((row) => row.classList.remove("replay-current"));
  tracking.replaying = false;
  lightDiagram(tracking, kind);
}

// --- The outcome at a glance: what the saga undid, next to its status ------------------------
// At the top of the saga panel, so the compensations that ran are in view as soon as the
// panel is, above the diagrams; the outcome below lists them with results and errors.
function renderSummary(tracking) {
  const { view } = tracking;
  const box = $("#saga-summary");
  const recovery = state.recoveries[tracking.bookingId] || null;
  // A failed compensation, or a confirmed booking whose capture failed (recover captures again).
  const recoverable = (view.status === "NEEDS_ATTENTION" || view.payment.status === "CAPTURE_FAILED")
    && Boolean(state.config.operator_routes);
  box.hidden = !view.compensations.length && !recovery && !recoverable;
  box.dataset.outcome = view.status.toLowerCase();
  if (box.hidden) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(...[
    h("span", { class: "summary-label" }, "Compensations that ran"),
    view.compensations.length
      ? h("ol", { class: "comp-strip", "data-testid": "compensation-summary" }, ...view.compensations.map((entry) => {
        const look = entry.status.toLowerCase();
        return h("li", { "data-summary": entry.name, "data-status": look, title: `${entry.name}: ${look}` },
          h("span", { class: `tag tag-${look}` }, look.replace("_", " ")), " ", entry.name);
      }))
      : h("span", { class: "muted" }, "none"),
    recovery ? recoveryNote(recovery) : null,
    recoverable ? recoverAction(tracking) : null,
  ].filter(Boolean));
}

// --- The operator's recover (only where GET /config says the stage has operator routes) ---
// POST admin/bookings/{id}/recover re-runs, in saga order, the compensations of a
// NEEDS_ATTENTION booking that did not finish; it becomes FAILED (or CANCELLED) only when
// its tables check clean. It is an operator's route: deployed, operators invoke the
// operator Lambda with IAM and the route does not exist; locally nothing checks a caller,
// so the customer's token is not sent.
function recoverAction(tracking) {
  return h("div", { class: "recover" },
    h("button", {
      type: "button", class: "btn btn-danger btn-small", "data-testid": "recover", disabled: Boolean(tracking.recovering),
      onclick: () => recover(tracking),
    }, tracking.recovering ? "Recovering…" : "Recover"),
    h("span", { class: "muted small" }, "As the operator (this stage only): re-run what did not finish."),
    h("span", { class: "field-error", id: "recover-error", "data-testid": "recover-error" }));
}

async function recover(tracking) {
  tracking.recovering = true;
  renderSummary(tracking);
  let result;
  try {
    result = await api(`admin/bookings/${encodeURIComponent(tracking.bookingId)}/recover`, { method: "POST", anonymous: true });
  } catch (exc) {
    tracking.recovering = false;
    if (tracking.token !== state.trackToken) return;
    renderSummary(tracking);
    $("#recover-error").textContent = `Not recovered: ${exc.message}`;
    return;
  }
  state.recoveries[tracking.bookingId] = result;
  if (tracking.token === state.trackToken) startTracking(tracking.bookingId); // the booking as recover left it
}

function recoveryNote(result) {
  const stillFailing = Object.entries(result.still_failing || {});
  const violations = result.violations || [];
  const done = result.status !== "NEEDS_ATTENTION" && !stillFailing.length;
  return h("p", { class: `recovery${done ? "" : " err"}`, "data-testid": "recovery" },
    h("b", {}, done ? "Recovered by the operator: " : "The operator's recover did not finish: "),
    result.rerun.length ? ["re-ran ", h("span", { "data-testid": "recovery-rerun" }, result.rerun.join(", "))] : "nothing was left to re-run",
    " → ", h("b", { "data-testid": "recovery-status" }, result.status),
    stillFailing.length ? `; still failing: ${stillFailing.map(([name, error]) => `${name} (${error})`).join(", ")}` : "",
    result.written_off ? `; the authorisation had lapsed: ${result.written_off} minor units written off as lost revenue` : "",
    violations.length ? `; the tables do not check clean: ${violations.map((v) => `${v.rule} (${v.detail})`).join(", ")}` : "");
}

// --- Outcome -------------------------------------------------------------------------------
function renderOutcome(tracking) {
  const { view } = tracking;
  const out = $("#outcome");
  const parts = [];
  if (view.status === "CONFIRMED") parts.push(partyOf(view) || !view.boarding_pass ? tickets(view) : boardingPass(view), confirmedActions(tracking));
  else if (view.status === "FAILED" || view.status === "NEEDS_ATTENTION") parts.push(failure(view));
  else if (view.status === "CANCELLED") parts.push(cancelled(view));
  else parts.push(h("div", { class: "running-note" }, h("span", { class: "spinner" }),
    view.status === "CANCELLING" ? "Cancelling: the compensations are running…" : "The saga is running…"));
  parts.push(facts(view));
  out.replaceChildren(...parts);
}

const partyOf = (view) => (view.passengers || []).length > 1 || (view.legs || []).length > 1;
const fullName = (person) => `${person.first_name || ""} ${person.last_name || ""}`.trim();
const seatOf = (leg, passenger) => (leg.seats.find((item) => item.passenger === passenger) || {}).seat || null;

function facts(view) {
  const passenger = view.passenger || {};
  const row = (label, value, testid) => h("div", {}, h("dt", {}, label), h("dd", testid ? { "data-testid": testid } : {}, value));
  const party = partyOf(view);
  const cabin = CABIN_LABEL[view.cabin] || view.cabin || "";
  const seats = party
    ? view.legs.map((leg) => `${leg.flight_number}: ${leg.seats.length ? leg.seats.map((item) => item.seat).join(" ") : `any ${cabin}`}`).join(" · ")
    : (view.seat ? `${view.seat} · ${cabin}` : `any ${cabin}`.trim());
  return h("dl", { class: "facts" },
    party ? row("Passengers", view.passengers.map(fullName).join(", "), "booking-passengers")
      : row("Passenger", fullName(passenger)),
    row(party ? "Flights" : "Flight", party ? view.legs.map((leg) => leg.flight_number).join(" → ") : view.flight_number),
    row(party ? "Seats" : "Seat", seats, "booking-seat"),
    row("Fare", view.fare ? money(view.fare, view.currency) : "—"),
    row("Loyalty", view.loyalty_id ? `${view.loyalty_id} · ${view.points_to_redeem.toLocaleString("en-US")} pts redeemed` : "—"),
    row("Payment", `${view.payment.status.toLowerCase()} ${view.payment.amount ? money(view.payment.amount, view.currency) : ""}`.trim()),
    row("Created", `${view.created_at.replace("T", " ").slice(0, 19)} UTC`));
}

// A party's (or a journey's) tickets: every passenger, their ticket and their seat on each leg.
function tickets(view) {
  return h("article", { class: "tickets", "data-testid": "tickets" },
    h("h3", {}, `Confirmed: ${view.passengers.length} passenger${view.passengers.length > 1 ? "s" : ""} on `,
      view.legs.map((leg) => leg.flight_number).join(" → ")),
    h("table", { class: "ticket-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Passenger"), h("th", {}, "Ticket"),
        ...view.legs.map((leg) => h("th", {}, `${leg.flight_number} seat`)))),
      h("tbody", {}, ...view.passengers.map((person, index) => h("tr", { "data-testid": `ticket-${index}` },
        h("td", {}, fullName(person)),
        h("td", { class: "mono", "data-testid": `ticket-number-${index}` }, person.ticket_number || "—"),
        ...view.legs.map((leg, legIndex) => h("td", { class: "mono strong", "data-testid": `ticket-seat-${index}-${legIndex}` },
          seatOf(leg, index) || "—")))))),
    h("p", { class: "muted small" }, `Paid ${money(view.amount_paid, view.currency)}`,
      view.points_to_redeem ? ` + ${view.points_to_redeem.toLocaleString("en-US")} pts` : ""));
}

function boardingPass(view) {
  const pass = view.boarding_pass;
  return h("article", { class: "boarding-pass", "data-testid": "boarding-pass" },
    h("div", { class: "bp-main" },
      h("div", { class: "bp-top" }, h("span", { class: "bp-airline" }, "Saga Air"), h("span", { class: "bp-kind" }, "Boarding pass")),
      h("div", { class: "bp-route" },
        h("div", {}, h("span", { class: "bp-code" }, pass.origin), h("small", {}, whenUtc(pass.departure))),
        h("span", { class: "bp-plane", "aria-hidden": "true" }, "✈"),
        h("div", {}, h("span", { class: "bp-code" }, pass.destination), h("small", {}, "UTC"))),
      h("dl", { class: "bp-grid" },
        h("div", {}, h("dt", {}, "Passenger"), h("dd", { "data-testid": "bp-passenger" }, pass.passenger)),
        h("div", {}, h("dt", {}, "Flight"), h("dd", {}, pass.flight_number)),
        h("div", {}, h("dt", {}, "Boarding"), h("dd", {}, whenUtc(pass.boarding_time, { date: false }))),
        h("div", {}, h("dt", {}, "Ticket"), h("dd", { class: "mono", "data-testid": "bp-ticket" }, pass.ticket_number)),
        h("div", {}, h("dt", {}, "Paid"), h("dd", {}, money(view.amount_paid, view.currency),
          view.points_to_redeem ? ` + ${view.points_to_redeem.toLocaleString("en-US")} pts` : "")))),
    h("div", { class: "bp-stub" },
      h("dt", {}, "Seat"), h("dd", { class: "bp-seat", "data-testid": "bp-seat" }, pass.seat),
      h("dt", {}, CABIN_LABEL[pass.cabin] || pass.cabin), h("dd", {}, `Group ${pass.boarding_group}`),
      h("div", { class: "barcode", "aria-hidden": "true" })));
}

function confirmedActions(tracking) {
  const faults = chosenFaults(vocabulary().cancellation_steps);
  const note = Object.keys(faults).length
    ? `with injected failures: ${Object.entries(faults).map(([k, v]) => `${k} ${v}`).join(", ")}`
    : `refund, reverse the miles, return the points, free the seat${partyOf(tracking.view) ? "s" : ""}`;
  return h("div", { class: "actions" },
    h("button", { type: "button", class: "btn btn-danger", "data-testid": "cancel-booking", onclick: () => cancelBooking(tracking) }, "Cancel this booking"),
    h("span", { class: "muted small" }, note),
    h("p", { class: "field-error", "data-testid": "cancel-error", id: "cancel-error" }));
}

function compensationList(view) {
  if (!view.compensations.length) return h("p", { class: "muted" }, "No compensation was needed: nothing had happened yet.");
  return h("ol", { class: "comp-list", "data-testid": "compensations" }, ...view.compensations.map((entry) => h("li", {
    "data-compensation": entry.name, "data-status": entry.status.toLowerCase(),
  },
  h("span", { class: `tag tag-${entry.status.toLowerCase()}` }, entry.status.toLowerCase()),
  h("b", {}, entry.name),
  entry.attempts > 1 ? h("span", { class: "muted" }, ` · ${entry.attempts} attempts`) : null,
  entry.result ? h("span", { class: "muted mono small" }, ` ${summarize(entry.result)}`) : null,
  entry.error ? h("div", { class: "err small" }, `${entry.error.error}: ${entry.error.cause}`) : null)));
}

function summarize(result) {
  return Object.entries(result).filter(([, v]) => v !== null && typeof v !== "object")
    .map(([k, v]) => `${k}=${v}`).join(" ");
}

function failure(view) {
  const failedStep = view.failed_step || (view.needs_attention && view.needs_attention.failed_step);
  const error = view.error || {};
  return h("div", { class: "failure", "data-testid": "failure" },
    h("h3", {}, view.status === "NEEDS_ATTENTION" ? "Booking failed, and a compensation failed too" : "Booking failed, everything undone"),
    h("p", {}, "Failed step: ", h("b", { "data-testid": "failed-step" }, failedStep || "—")),
    h("p", { class: "err" }, h("b", { "data-testid": "failed-error" }, error.error || "Unknown"), error.cause ? `: ${error.cause}` : ""),
    view.needs_attention && view.needs_attention.failed_compensations.length
      ? h("p", { class: "err" }, `Dead-lettered for an operator: ${view.needs_attention.failed_compensations.join(", ")}`) : null,
    h("h4", {}, "Compensations that ran"),
    compensationList(view));
}

function cancelled(view) {
  return h("div", { class: "cancelled", "data-testid": "cancelled" },
    h("h3", {}, "Booking cancelled"),
    h("p", {}, `${partyOf(view) ? `Every seat on ${view.legs.map((leg) => leg.flight_number).join(", ")} is` : `Seat ${view.seat || "—"} on ${view.flight_number} is`} free again. Payment ${view.payment.status.toLowerCase()}: ${money(view.payment.amount, view.currency)}.`),
    h("h4", {}, "Compensations that ran"),
    compensationList(view));
}

async function cancelBooking(tracking) {
  const button = $('[data-testid="cancel-booking"]');
  button.disabled = true;
  const faults = chosenFaults(vocabulary().cancellation_steps);
  try {
    await api(`bookings/${tracking.bookingId}/cancel`, {
      method: "POST", body: Object.keys(faults).length ? { simulate_failure: faults } : {},
    });
  } catch (exc) {
    if (exc.status === 401) return; // signed out: the booking is no longer on the page
    button.disabled = false;
    $("#cancel-error").textContent = exc.message;
    return;
  }
  startTracking(tracking.bookingId);
}

// --- Timeline ---------------------------------------------------------------------------
const EVENT_LABEL = [
  [/^Execution(Started)$/, "execution started"], [/^Execution(Succeeded)$/, "execution succeeded"],
  [/^Execution(Failed)$/, "execution failed"], [/^Execution(TimedOut|Aborted)$/, "execution stopped"],
  [/StateEntered$/, "entered"], [/StateExited$/, "exited"], [/Scheduled$/, "scheduled"], [/Started$/, "started"],
  [/Succeeded$/, "succeeded"], [/Failed$/, "failed"], [/TimedOut$/, "timed out"],
];

function eventClass(type) {
  if (/Failed|TimedOut|Aborted/.test(type)) return "ev-fail";
  if (/Succeeded/.test(type)) return "ev-ok";
  if (/StateEntered/.test(type)) return "ev-enter";
  if (/^Execution/.test(type)) return "ev-exec";
  return "ev-minor";
}

function renderTimeline(tracking) {
  const list = $("#timeline");
  const executions = tracking.history.executions;
  const total = executions.reduce((n, execution) => n + execution.events.length, 0);
  $("#timeline-count").textContent = `${total} events`;
  const scrolled = list.scrollTop;
  // The latest execution first (a cancellation above the booking it undoes).
  const blocks = [...executions].reverse().map((execution) => {
    const t0 = execution.events.length ? Date.parse(execution.events[0].timestamp) : 0;
    return h("div", { class: "tl-exec", "data-testid": `timeline-${execution.kind}` },
      h("div", { class: "tl-head" },
        h("b", {}, execution.kind === "booking" ? "Booking execution" : "Cancellation execution"),
        h("span", { class: `exec-status`, "data-status": execution.status }, execution.status),
        h("span", { class: "muted small" }, `correlation ${tracking.history.correlation_id}`)),
      h("ol", { class: "tl-events" }, ...execution.events.map((event) => {
        const label = (EVENT_LABEL.find(([re]) => re.test(event.type)) || [null, event.type])[1];
        const offset = Date.parse(event.timestamp) - t0;
        return h("li", { class: `tl-row ${eventClass(event.type)}`, "data-kind": execution.kind, "data-type": event.type, title: event.type },
          h("span", { class: "tl-time mono" }, `+${offset} ms`),
          h("span", { class: "tl-state" }, event.state || ""),
          h("span", { class: "tl-type" }, label,
            event.attempt ? h("span", { class: event.retry ? "tag tag-retry" : "tag" }, event.retry ? `retry · attempt ${event.attempt}` : `attempt ${event.attempt}`) : null),
          event.error || event.cause ? h("span", { class: "tl-error" }, h("b", {}, event.error || ""), event.cause ? ` ${parseCause(event.cause)}` : "") : null);
      })));
  });
  list.replaceChildren(...blocks);
  list.scrollTop = scrolled;
}

// --- Lookup ---------------------------------------------------------------------------
async function lookup(event) {
  event.preventDefault();
  const input = $("#lookup-id");
  const id = input.value.trim().toLowerCase();
  clearFieldError("booking_id");
  if (!/^[0-9a-f-]{36}$/.test(id)) {
    showError("booking_id", "A booking id looks like 3f0c…-…: 36 hex digits and dashes.", { fallback: "#global-error" });
    return;
  }
  if (!state.customer) {
    askToSignIn('[data-error-for="booking_id"]', "Sign in to find your booking.");
    return;
  }
  try {
    await api(`bookings/${id}`);
  } catch (exc) {
    if (exc.status === 401) {
      askToSignIn('[data-error-for="booking_id"]', "Sign in again to find your booking.");
      return;
    }
    const message = exc.status === 404 || (exc.status >= 500 && !exc.body.error)
      ? `No booking ${id} could be found${exc.status >= 500 ? ` (${exc.message})` : ""}` : exc.message;
    showError("booking_id", message, { fallback: "#global-error" });
    return;
  }
  startTracking(id, { scroll: true });
}

// --- Signing in ---------------------------------------------------------------------------
// Flights and seat maps are public; booking, a booking's lookup and cancel, a loyalty
// balance and the state machines need the customer's ID token (POST /auth/sign-in).
function demoSignIn() {
  return state.config.demo_sign_in || null; // only where the stage has demo customers, never prod
}

function renderDemoSignIn() {
  const demo = demoSignIn();
  $("#demo-usernames").replaceChildren(...(demo ? demo.usernames : []).map((name) => h("option", { value: name })));
  const note = $("#sign-in-demo");
  note.hidden = !demo;
  if (!demo) return;
  const names = demo.usernames;
  note.replaceChildren("Demo customers on this stage: ",
    h("b", {}, names.length > 1 ? `${names[0]} … ${names[names.length - 1]}` : names[0] || ""),
    ", password ", h("code", {}, demo.password), ".");
  $("#sign-in-username").value = names[0] || "";
  resetPassword();
}

// The password stays in the box only when it is the stage's published demo one.
function resetPassword() {
  const demo = demoSignIn();
  $("#sign-in-password").value = demo ? demo.password : "";
}

function renderSession() {
  const customer = state.customer;
  document.body.dataset.signedIn = String(Boolean(customer));
  $("#sign-in").hidden = Boolean(customer);
  $("#signed-in").hidden = !customer;
  $("#signed-in-as").textContent = customer ? customer.username : "";
  renderBookButton();
}

function showSignInMessage(message) {
  const note = $("#sign-in-message");
  note.textContent = message;
  note.hidden = !message;
}

// Said where the visitor asked (`slot`), then the sign-in box is brought into view.
function askToSignIn(slot, message) {
  $(slot).textContent = message;
  const box = $("#sign-in");
  if (box.hidden) return;
  box.scrollIntoView({ block: "start", behavior: "smooth" });
  const empty = [$("#sign-in-username"), $("#sign-in-password")].find((input) => !input.value);
  (empty || $("#sign-in-submit")).focus({ preventScroll: true });
}

async function signIn(event) {
  event.preventDefault();
  clearErrors($("#sign-in-form"));
  $("#sign-in-error").textContent = "";
  const username = $("#sign-in-username").value.trim();
  const password = $("#sign-in-password").value; // never trimmed: spaces may be part of it
  const problems = [];
  if (!username) problems.push({ field: "username", message: "Enter your username, e.g. FF0001." });
  if (!password) problems.push({ field: "password", message: "Enter your password." });
  if (problems.length) {
    showProblems(problems, { fallback: "#sign-in-error" });
    return;
  }
  const button = $("#sign-in-submit");
  button.disabled = true;
  button.textContent = "Signing in…";
  let tokens;
  try {
    tokens = await api("auth/sign-in", { method: "POST", body: { username, password }, anonymous: true });
  } catch (exc) {
    if (!(exc instanceof ApiError)) throw exc;
    // Wrong credentials name no field (the API never says which part was wrong); the
    // password is the one to type again.
    if (exc.status === 401) showError("password", exc.message, { fallback: "#sign-in-error" });
    else showProblems(exc.problems, { fallback: "#sign-in-error" });
    return;
  } finally {
    button.disabled = false;
    button.textContent = "Sign in";
  }
  session.start(tokens.id_token);
  await resumeSession();
}

// The held token's customer (GET /me) and the state machines they may see. A refused
// token has already brought the sign-in box back (session.onRefused).
async function resumeSession() {
  let customer;
  let machines;
  try {
    [customer, machines] = await Promise.all([api("me"), api("statemachines")]);
  } catch (exc) {
    if (exc.status !== 401) {
      session.end();
      endSession(`Could not sign you in: ${exc.message}`);
    }
    return;
  }
  state.customer = customer;
  state.machines = machines;
  showSignInMessage("");
  clearErrors($("#sign-in-form"));
  $("#sign-in-error").textContent = "";
  resetPassword();
  renderSession();
  // The customer books with their own account (another's is refused); loyalty stays
  // optional, so the field may still be cleared.
  $("#loyalty-id").value = customer.loyalty_id || "";
  lookupLoyalty();
  if (state.pendingBooking) {
    const bookingId = state.pendingBooking;
    state.pendingBooking = null;
    startTracking(bookingId);
  }
}

// Back to a visitor: what the page showed was the customer's (their booking, their
// account), so it goes with them.
function endSession(message = "") {
  state.customer = null;
  state.machines = null;
  state.account = null;
  state.pendingBooking = null;
  state.trackToken += 1; // stops any poll of their booking
  state.tracking = null;
  state.recoveries = {};
  $("#saga").hidden = true;
  $("#diagrams").replaceChildren();
  $("#timeline").replaceChildren();
  $("#outcome").replaceChildren();
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  $("#loyalty-id").value = "";
  $("#loyalty-balance").textContent = "";
  clearFieldError("loyalty_id");
  renderAllSeatMaps();
  showSignInMessage(message);
  renderSession();
}

function signOut() {
  session.end();
  endSession();
}

// --- Start ------------------------------------------------------------------------------
async function init() {
  session.onRefused((exc) => endSession(`You were signed out: the server refused your session (${exc.message}). Sign in again.`));
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  for (const input of $$("#sign-in-form input")) input.addEventListener("input", () => clearFieldError(input.name));
  $("#booking-form").addEventListener("submit", book);
  $("#add-passenger").addEventListener("click", addPassenger);
  $("#add-leg").addEventListener("click", addLeg);
  $("#lookup-form").addEventListener("submit", lookup);
  $("#loyalty-id").addEventListener("input", (event) => {
    const upper = event.target.value.toUpperCase();
    if (upper !== event.target.value) event.target.value = upper;
    scheduleLoyaltyLookup();
  });
  $("#points").addEventListener("input", () => { clearFieldError("points_to_redeem"); renderPrice(); });
  for (const input of $$("#booking-form input")) input.addEventListener("input", () => clearFieldError(input.name));
  try {
    // Only public routes here: the page is usable signed out.
    const [config] = await Promise.all([api("config"), loadFlights()]);
    state.config = config;
  } catch (exc) {
    showGlobal(`The API is not answering: ${exc.message}`);
    $("#stage-badge").textContent = "offline";
    return;
  }
  renderFaults();
  const badge = $("#stage-badge");
  badge.textContent = `stage ${state.config.stage}${state.config.fault_injection ? " · fault injection on" : ""}`;
  badge.dataset.faults = String(state.config.fault_injection);
  $("#faults-card").hidden = !state.config.fault_injection;
  document.body.classList.toggle("no-faults", !state.config.fault_injection);
  renderDemoSignIn();
  const fromHash = /booking=([0-9a-f-]{36})/.exec(location.hash);
  // A booking is its customer's: a link to one is followed once signed in.
  if (fromHash) state.pendingBooking = fromHash[1];
  await selectFlight(state.flights.length ? state.flights[0].flight_number : null);
  renderLegCards();
  // A reload keeps the customer signed in (the token is in sessionStorage).
  if (session.token()) await resumeSession();
  else renderSession();
  if (state.pendingBooking) showSignInMessage(`Sign in to see booking ${state.pendingBooking}.`);
  document.body.dataset.ready = "true";
}

init();
