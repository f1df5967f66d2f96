// The state machine, drawn from its Amazon States Language definition (as returned by
// GET /statemachines) and lit from the execution history. Nothing here names a state:
// the picture is whatever the definition says, so it cannot drift from it.

const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 142;
const NODE_H = 50;
const COL_GAP = 30;
const SUBROW_GAP = 14;
const LANE_GAP = 96;
const MARGIN_X = 18;
const MARGIN_TOP = 46;
const MARGIN_BOTTOM = 46;

const OPERATORS = {
  NumericGreaterThan: ">", NumericGreaterThanEquals: "≥", NumericLessThan: "<", NumericLessThanEquals: "≤",
  NumericEquals: "=", StringEquals: "=", BooleanEquals: "=", TimestampEquals: "=",
  IsPresent: "present", IsNull: "null",
};

function choiceVariable(rule) {
  return rule.Variable ? rule.Variable.replace(/^\$\./, "") : "";
}

// The test of one Choice rule without its variable ("> 0"); the variable goes on the node.
function describeChoice(rule) {
  for (const [key, value] of Object.entries(rule)) {
    if (key === "Variable" || key === "Next") continue;
    const op = OPERATORS[key] || key;
    return `${op} ${typeof value === "string" ? JSON.stringify(value) : value}`.trim();
  }
  return "when";
}

function choiceQuestion(state) {
  const variables = [...new Set((state.Choices || []).map(choiceVariable).filter(Boolean))];
  return variables.length ? `${variables.join(", ")} ?` : "Choice";
}

// --- Graph ------------------------------------------------------------------------------
export function edgesOf(definition) {
  const edges = [];
  const seen = new Set();
  const add = (edge) => {
    const key = `${edge.from}->${edge.to}`;
    if (seen.has(key)) return;
    seen.add(key);
    edges.push(edge);
  };
  const states = definition.States || {};
  // Transitions first, so a Catch that lands where Next goes is drawn once, as a transition.
  for (const [name, state] of Object.entries(states)) {
    if (state.Next) add({ from: name, to: state.Next, kind: "next" });
    for (const rule of state.Choices || []) add({ from: name, to: rule.Next, kind: "choice", label: describeChoice(rule) });
    if (state.Default) add({ from: name, to: state.Default, kind: "default", label: "otherwise" });
  }
  for (const [name, state] of Object.entries(states)) {
    for (const handler of state.Catch || []) {
      add({ from: name, to: handler.Next, kind: "catch", label: (handler.ErrorEquals || []).join(", ") });
    }
  }
  return edges.filter((edge) => edge.to in states);
}

function reachable(start, edges) {
  const out = new Set([start]);
  const todo = [start];
  while (todo.length) {
    const name = todo.pop();
    for (const edge of edges) {
      if (edge.from === name && !out.has(edge.to)) {
        out.add(edge.to);
        todo.push(edge.to);
      }
    }
  }
  return out;
}

// Longest-path rank over the transitions inside `members` (back edges of a loop ignored).
function ranks(members, edges, roots) {
  const inside = edges.filter((edge) => members.has(edge.from) && members.has(edge.to));
  const order = [];
  const state = new Map();
  const backEdges = new Set();
  const visit = (name) => {
    state.set(name, "open");
    for (const edge of inside) {
      if (edge.from !== name) continue;
      if (state.get(edge.to) === "open") backEdges.add(edge);
      else if (!state.has(edge.to)) visit(edge.to);
    }
    state.set(name, "done");
    order.push(name);
  };
  for (const root of roots) if (!state.has(root)) visit(root);
  for (const name of members) if (!state.has(name)) visit(name);
  order.reverse();
  const rank = new Map([...members].map((name) => [name, 0]));
  for (const name of order) {
    for (const edge of inside) {
      if (edge.from === name && !backEdges.has(edge)) rank.set(edge.to, Math.max(rank.get(edge.to), rank.get(name) + 1));
    }
  }
  return rank;
}

// Lane 0: what StartAt reaches through Next/Choices/Default (the forward path).
// Lane 1: everything only a Catch leads to (the compensation path), drawn right to
// left under the forward states, since compensations undo them in reverse order.
export function layout(definition) {
  const states = definition.States || {};
  const names = Object.keys(states);
  const edges = edgesOf(definition);
  const flow = edges.filter((edge) => edge.kind !== "catch");
  const forward = reachable(definition.StartAt, flow);
  const compensation = new Set(names.filter((name) => !forward.has(name)));

  const column = new Map();
  const forwardRank = ranks(forward, edges, [definition.StartAt]);
  for (const name of forward) column.set(name, forwardRank.get(name));

  if (compensation.size) {
    const roots = [...compensation].filter(
      (name) => !edges.some((edge) => edge.to === name && compensation.has(edge.from)));
    const compRank = ranks(compensation, edges, roots);
    // The first compensation sits under the furthest forward state that catches into it.
    let anchor = 0;
    for (const edge of edges) {
      if (edge.kind === "catch" && forward.has(edge.from) && roots.includes(edge.to)) {
        anchor = Math.max(anchor, column.get(edge.from));
      }
    }
    for (const name of compensation) column.set(name, anchor - compRank.get(name));
  }
  const minCol = Math.min(...column.values());
  for (const [name, col] of column) column.set(name, col - minCol);

  // States sharing a lane and column are stacked.
  const slots = new Map();
  const position = new Map();
  for (const name of names) {
    const lane = forward.has(name) ? 0 : 1;
    const key = `${lane}:${column.get(name)}`;
    const sub = slots.get(key) || 0;
    slots.set(key, sub + 1);
    position.set(name, { lane, col: column.get(name), sub });
  }
  const laneDepth = [0, 1].map((lane) => Math.max(1, ...[...position.values()].filter((p) => p.lane === lane).map((p) => p.sub + 1)));
  const laneHeight = laneDepth.map((depth) => depth * NODE_H + (depth - 1) * SUBROW_GAP);
  const laneTop = [MARGIN_TOP, MARGIN_TOP + laneHeight[0] + LANE_GAP];
  const cols = Math.max(...column.values()) + 1;
  const nodes = names.map((name) => {
    const p = position.get(name);
    return {
      name, state: states[name], type: states[name].Type, lane: p.lane, col: p.col, sub: p.sub,
      x: MARGIN_X + p.col * (NODE_W + COL_GAP),
      y: laneTop[p.lane] + p.sub * (NODE_H + SUBROW_GAP),
    };
  });
  const lanes = compensation.size ? 2 : 1;
  const height = (lanes === 2 ? laneTop[1] + laneHeight[1] : laneTop[0] + laneHeight[0]) + MARGIN_BOTTOM;
  const width = MARGIN_X * 2 + cols * NODE_W + (cols - 1) * COL_GAP;
  return { nodes, edges, lanes, laneTop, laneHeight, width, height, compensation };
}

// --- Status from the history --------------------------------------------------------
const FAILURE_EVENT = /(Failed|TimedOut)$/;
const SCHEDULED_EVENT = /Scheduled$/;

function parseCause(cause) {
  if (!cause) return "";
  try {
    const payload = JSON.parse(cause);
    if (payload && payload.errorMessage) return String(payload.errorMessage);
  } catch {
    // not JSON: the cause is the message
  }
  return String(cause);
}

export { parseCause };

/**
 * Per state: {status, attempts, error}. status is one of pending, running,
 * succeeded, retried, failed, compensated, skipped. `events` may be a prefix of the
 * history (a replay); `ended` says whether the execution has stopped.
 */
export function stateStatuses(definition, events, { ended, compensations = new Set(), stepLog = {} } = {}) {
  const states = definition.States || {};
  const info = {};
  for (const name of Object.keys(states)) info[name] = { entered: false, exited: false, attempts: 0, lastFailed: false, error: null };
  const taken = new Set();
  let previous = null;
  for (const event of events) {
    const item = info[event.state];
    if (!item) continue;
    if (event.type.endsWith("StateEntered")) {
      item.entered = true;
      if (previous) taken.add(`${previous}->${event.state}`);
      previous = event.state;
    } else if (event.type.endsWith("StateExited")) {
      item.exited = true;
    } else if (SCHEDULED_EVENT.test(event.type)) {
      item.attempts += 1;
      item.lastFailed = false;
    } else if (FAILURE_EVENT.test(event.type) && !event.type.startsWith("Execution")) {
      item.lastFailed = true;
      item.error = { error: event.error || event.type, cause: parseCause(event.cause) };
    }
  }
  const result = {};
  for (const [name, state] of Object.entries(states)) {
    const item = info[name];
    let status;
    if (!item.entered) status = ended ? "skipped" : "pending";
    else if (state.Type === "Fail") status = "failed";
    // A Map (a task run per leg) is drawn as its task: its legs' outcome is in the step log.
    else if (state.Type !== "Task" && state.Type !== "Map") status = item.exited || ended ? "succeeded" : "running";
    else if (!item.exited) status = ended ? "failed" : "running";
    else if (item.lastFailed) status = "failed";
    else if (compensations.has(name)) status = "compensated";
    else if (item.attempts > 1) status = "retried";
    else status = "succeeded";
    // The booking's own step log can know more (a step that timed out is TIMED_OUT there).
    const logged = stepLog[name];
    const loggedFailed = logged && (logged.status === "FAILED" || logged.status === "TIMED_OUT");
    if (loggedFailed && item.entered && status !== "running") status = "failed";
    const error = item.error || (logged && logged.error ? { error: logged.error.error, cause: logged.error.cause } : null);
    result[name] = { status, attempts: item.attempts, error: status === "failed" || item.attempts > 1 ? error : null };
  }
  return { states: result, taken };
}

// --- Drawing --------------------------------------------------------------------------
function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function shortResource(resource) {
  if (!resource) return "";
  const fn = resource.split(":function:")[1];
  return fn ? `λ ${fn}` : resource.split(":").pop();
}

function tooltip(node) {
  const s = node.state;
  const lines = [`${node.name} (${s.Type})`];
  if (s.Comment) lines.push(s.Comment);
  if (s.Resource) lines.push(`Resource: ${shortResource(s.Resource)}`);
  if (s.TimeoutSeconds) lines.push(`TimeoutSeconds: ${s.TimeoutSeconds}`);
  for (const retry of s.Retry || []) {
    lines.push(`Retry ${retry.ErrorEquals.join(", ")}: ${retry.MaxAttempts ?? 3}× every ${retry.IntervalSeconds ?? 1}s ×${retry.BackoffRate ?? 2}`);
  }
  for (const handler of s.Catch || []) lines.push(`Catch ${handler.ErrorEquals.join(", ")} → ${handler.Next}`);
  if (s.Error) lines.push(`Error: ${s.Error}`);
  return lines.join("\n");
}

function anchorPoints(a, b) {
  const ax = a.x + NODE_W / 2;
  const bx = b.x + NODE_W / 2;
  return { ax, bx, ay: a.y + NODE_H / 2, by: b.y + NODE_H / 2 };
}

function edgePath(edge, from, to, catchIndex) {
  const { ax, bx, ay, by } = anchorPoints(from, to);
  if (from.lane === to.lane) {
    const dc = to.col - from.col;
    if (Math.abs(dc) === 1 || (dc === 0 && from.sub !== to.sub)) {
      if (dc === 0) {
        const y1 = from.sub < to.sub ? from.y + NODE_H : from.y;
        const y2 = from.sub < to.sub ? to.y : to.y + NODE_H;
        return { d: `M${ax} ${y1} L${bx} ${y2}`, lx: ax, ly: (y1 + y2) / 2 };
      }
      const x1 = dc > 0 ? from.x + NODE_W : from.x;
      const x2 = dc > 0 ? to.x : to.x + NODE_W;
      if (from.sub !== to.sub) {
        // To a stacked state: label just before the target, clear of both boxes.
        return { d: `M${x1} ${ay} L${x2} ${by}`, lx: x2 - (dc > 0 ? 6 : -6), ly: by + 4, anchor: dc > 0 ? "end" : "start" };
      }
      const ly = from.lane === 0 ? Math.min(from.y, to.y) - 6 : Math.max(from.y, to.y) + NODE_H + 14;
      return { d: `M${x1} ${ay} L${x2} ${by}`, lx: (x1 + x2) / 2, ly };
    }
    // Skipping columns: an arc over (forward lane) or under (compensation lane) the row.
    const above = from.lane === 0;
    const y1 = above ? from.y : from.y + NODE_H;
    const y2 = above ? to.y : to.y + NODE_H;
    const lift = 30 + 6 * Math.abs(dc);
    const cy = above ? Math.min(y1, y2) - lift : Math.max(y1, y2) + lift;
    const sx = ax + (dc > 0 ? 18 : -18);
    const ex = bx - (dc > 0 ? 18 : -18);
    return { d: `M${sx} ${y1} C${sx} ${cy} ${ex} ${cy} ${ex} ${y2}`, lx: (sx + ex) / 2, ly: cy + (above ? 10 : -4) };
  }
  // Between lanes: leave from the bottom (or top), spread the handlers of one state apart.
  const down = to.lane > from.lane;
  const offset = (catchIndex - 0.5) * 28;
  const sx = ax + offset;
  const y1 = down ? from.y + NODE_H : from.y;
  const y2 = down ? to.y : to.y + NODE_H;
  const ex = bx + offset / 3;
  const my = (y1 + y2) / 2;
  return { d: `M${sx} ${y1} C${sx} ${my} ${ex} ${my} ${ex} ${y2}`, lx: (sx + ex) / 2, ly: my };
}

/** Draw the machine into `container`; returns an object to light it up with statuses. */
export function drawMachine(container, definition, { machine, singleLaneTitle = "Path" }) {
  const plan = layout(definition);
  const byName = new Map(plan.nodes.map((node) => [node.name, node]));
  const svg = el("svg", {
    viewBox: `0 0 ${plan.width} ${plan.height}`, class: "machine", role: "img",
    "data-machine": machine, "aria-label": `${machine} state machine`,
  });
  svg.style.maxWidth = `${plan.width}px`;
  const defs = el("defs", {}, svg);
  for (const kind of ["next", "catch", "taken", "taken-catch", "taken-comp"]) {
    const marker = el("marker", {
      id: `arrow-${machine}-${kind}`, viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
    }, defs);
    el("path", { d: "M0 0 L10 5 L0 10 z", class: `arrowhead ${kind}` }, marker);
  }
  // Lane backgrounds and titles.
  const laneTitles = plan.lanes === 2
    ? ["Forward path", "Compensation path · undoes earlier steps in reverse"]
    : [singleLaneTitle];
  for (let lane = 0; lane < plan.lanes; lane += 1) {
    el("rect", {
      x: 4, y: plan.laneTop[lane] - 30, width: plan.width - 8, height: plan.laneHeight[lane] + 44,
      rx: 12, class: `lane lane-${lane}`,
    }, svg);
    const title = el("text", { x: 16, y: plan.laneTop[lane] - 13, class: "lane-title" }, svg);
    title.textContent = laneTitles[lane];
  }
  // Start marker.
  const start = byName.get(definition.StartAt);
  if (start) {
    el("circle", { cx: start.x - 8, cy: start.y + NODE_H / 2, r: 5, class: "start-dot" }, svg);
  }

  const edgeLayer = el("g", { class: "edges" }, svg);
  const nodeLayer = el("g", { class: "nodes" }, svg);
  const labelLayer = el("g", { class: "edge-labels" }, svg);
  const edgeEls = new Map();
  const catchCount = new Map();
  for (const edge of plan.edges) {
    const from = byName.get(edge.from);
    const to = byName.get(edge.to);
    let index = 0;
    if (from.lane !== to.lane) {
      index = catchCount.get(edge.from) || 0;
      catchCount.set(edge.from, index + 1);
    }
    const geometry = edgePath(edge, from, to, index);
    const inComp = from.lane === 1 && to.lane === 1;
    const group = el("g", { class: `edge ${edge.kind}${inComp ? " in-comp" : ""}`, "data-from": edge.from, "data-to": edge.to }, edgeLayer);
    const path = el("path", {
      d: geometry.d, class: "edge-line",
      "marker-end": `url(#arrow-${machine}-${edge.kind === "catch" ? "catch" : "next"})`,
    }, group);
    const title = el("title", {}, group);
    title.textContent = edge.kind === "catch" ? `Catch ${edge.label} → ${edge.to}` : `${edge.from} → ${edge.to}${edge.label ? ` (${edge.label})` : ""}`;
    if ((edge.kind === "choice" || edge.kind === "default") && edge.label) {
      const label = el("text", { x: geometry.lx, y: geometry.ly, class: "edge-label", "text-anchor": geometry.anchor || "middle" }, labelLayer);
      label.textContent = edge.label;
    }
    edgeEls.set(`${edge.from}->${edge.to}`, { group, path, edge, inComp });
  }

  const nodeEls = new Map();
  for (const node of plan.nodes) {
    const group = el("g", {
      class: `node type-${node.type.toLowerCase()} lane-${node.lane}`, transform: `translate(${node.x} ${node.y})`,
      "data-state": node.name, "data-status": "pending", "data-type": node.type, "data-testid": `state-${machine}-${node.name}`,
    }, nodeLayer);
    const rx = node.type === "Task" ? 9 : node.type === "Choice" ? 4 : NODE_H / 2;
    el("rect", { width: NODE_W, height: NODE_H, rx, class: "node-box" }, group);
    if (node.type === "Choice") el("path", { d: `M10 ${NODE_H / 2} l7 -7 l7 7 l-7 7 z`, class: "choice-mark" }, group);
    const cx = node.type === "Choice" ? NODE_W / 2 + 9 : NODE_W / 2;
    const name = el("text", { x: cx, y: 21, class: "node-name", "text-anchor": "middle" }, group);
    name.textContent = node.name;
    // Long names shrink to fit their box rather than spill out of it.
    const room = NODE_W - 14 - (node.type === "Choice" ? 20 : 0);
    const size = Math.min(12.5, room / (node.name.length * 0.62));
    if (size < 12.5) name.style.fontSize = `${size.toFixed(1)}px`;
    const sub = el("text", { x: cx, y: 38, class: "node-sub", "text-anchor": "middle" }, group);
    sub.textContent = node.type;
    const badge = el("g", { class: "badge", transform: `translate(${NODE_W - 6} -6)` }, group);
    el("circle", { r: 10, class: "badge-dot" }, badge);
    const badgeText = el("text", { y: 4, "text-anchor": "middle", class: "badge-text" }, badge);
    const title = el("title", {}, group);
    title.textContent = tooltip(node);
    // A Map's legs, one dot each (top left, inside its box): how each leg of it ran.
    const legDots = el("g", { class: "leg-dots", transform: "translate(26 7)" }, group);
    nodeEls.set(node.name, { group, sub, badge, badgeText, node, legDots });
  }
  container.appendChild(svg);

  const SUBTEXT = {
    pending: (n) => n.type, skipped: () => "not taken", running: () => "running…",
    succeeded: (n) => (n.type === "Task" ? "succeeded" : n.type === "Choice" ? "evaluated" : n.type === "Succeed" ? "reached" : "passed"),
    retried: () => "succeeded after retry", compensated: () => "compensated", failed: (n) => (n.type === "Fail" ? "execution failed" : "failed"),
  };

  return {
    plan,
    // `legs`: per Map state, its legs as the step log has them ([{leg, status, label}]).
    update({ states, taken, legs = {} }) {
      for (const [name, item] of nodeEls) {
        const ran = item.node.type === "Map" ? legs[name] || [] : [];
        item.legDots.replaceChildren();
        ran.forEach((leg, index) => {
          const dot = el("circle", {
            cx: index * 10, cy: 0, r: 3.5, class: "leg-dot", "data-leg": String(leg.leg), "data-status": leg.status,
            "data-testid": `leg-dot-${machine}-${name}-${leg.leg}`,
          }, item.legDots);
          el("title", {}, dot).textContent = leg.label;
        });
        const st = states[name] || { status: "pending", attempts: 0 };
        item.group.setAttribute("data-status", st.status);
        item.group.setAttribute("data-attempts", String(st.attempts));
        let sub = SUBTEXT[st.status](item.node);
        if (item.node.type === "Choice" && st.status !== "skipped") sub = choiceQuestion(item.node.state);
        if (st.status === "running" && st.attempts > 1) sub = `attempt ${st.attempts}…`;
        if (st.status === "failed" && st.error && st.error.error && item.node.type === "Task") sub = `✕ ${st.error.error}`;
        item.sub.textContent = sub;
        const showBadge = st.attempts > 1;
        item.badge.style.display = showBadge ? "" : "none";
        item.badgeText.textContent = showBadge ? `×${st.attempts}` : "";
        item.badge.querySelector("title")?.remove();
        if (showBadge) el("title", {}, item.badge).textContent = `${st.attempts} attempts`;
      }
      for (const [key, item] of edgeEls) {
        const isTaken = taken.has(key);
        item.group.classList.toggle("taken", isTaken);
        let kind = item.edge.kind === "catch" ? (isTaken ? "taken-catch" : "catch") : isTaken ? "taken" : "next";
        if (kind === "taken" && item.inComp) kind = "taken-comp";
        item.path.setAttribute("marker-end", `url(#arrow-${machine}-${kind})`);
        if (isTaken) item.group.parentNode.appendChild(item.group); // taken edges on top
      }
    },
  };
}
