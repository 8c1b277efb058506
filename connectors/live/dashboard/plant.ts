/**
 * The plant view: a tile per machine the run has seen (GET /api/plant every 2 s) — health score
 * and risk level, open alerts, the latest prediction — coloured by risk and sorted by it (critical
 * first), each with a live sparkline of its sensors (every machine topic's score frames: with 20
 * machines × 6 sensors, 120 live series drawn in the page's one animation-frame loop).
 */
import { esc, plant, RISK_ORDER, type PlantMachine } from "./api.js";
import type { ScoreFrame } from "./score-frame.js";
import { drawLoop, SeriesBuffer, type Drawable } from "./series.js";
import { fmt, h, every, type View, type ViewContext } from "./view.js";

const SPARK_POINTS = 150;
const SPARK_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];

/** One tile's sparkline: per sensor the last values, drawn scaled to the sensor's control limits (in control ≈ the middle band). */
class Sparkline implements Drawable {
  readonly canvas = h("canvas");
  private readonly bySensor = new Map<string, { buf: SeriesBuffer; lcl: number; ucl: number }>();

  add(frame: ScoreFrame, machine: string): void {
    const ucl = frame.columns.get("ucl");
    const lcl = frame.columns.get("lcl");
    for (let i = 0; i < frame.length; i++) {
      const sensor = frame.keys[frame.keyIndex[i]].slice(machine.length + 1);
      let s = this.bySensor.get(sensor);
      if (s === undefined) this.bySensor.set(sensor, (s = { buf: new SeriesBuffer(SPARK_POINTS, 1), lcl: Number.NaN, ucl: Number.NaN }));
      const v = frame.values[i];
      s.buf.push(() => v);
      if (ucl !== undefined && Number.isFinite(ucl[i])) s.ucl = ucl[i];
      if (lcl !== undefined && Number.isFinite(lcl[i])) s.lcl = lcl[i];
    }
    drawLoop.mark(this);
  }

  draw(): void {
    const c = this.canvas;
    const w = c.clientWidth;
    const hgt = c.clientHeight;
    if (c.width !== w || c.height !== hgt) Object.assign(c, { width: w, height: hgt });
    const g = c.getContext("2d");
    if (g === null) return;
    g.clearRect(0, 0, w, hgt);
    g.strokeStyle = "#ddd";
    g.strokeRect(0, hgt / 4, w, hgt / 2);
    let colour = 0;
    for (const { buf, lcl, ucl } of this.bySensor.values()) {
      const [vals] = buf.views();
      // Limits span the middle half of the height; without limits yet, the series' own range does.
      let lo = lcl;
      let hi = ucl;
      if (!(hi > lo)) [lo, hi] = [Math.min(...vals), Math.max(...vals)];
      const span = hi > lo ? hi - lo : 1;
      g.strokeStyle = SPARK_COLOURS[colour++ % SPARK_COLOURS.length];
      g.beginPath();
      for (let i = 0; i < vals.length; i++) {
        const x = (i / (SPARK_POINTS - 1)) * w;
        const y = hgt * 0.75 - ((vals[i] - lo) / span) * (hgt / 2);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      }
      g.stroke();
    }
  }
}

interface Tile {
  el: HTMLAnchorElement;
  body: HTMLElement;
  spark: Sparkline;
  unsubscribe: () => void;
}

export function plantView(ctx: ViewContext): View {
  const el = h("section");
  const note = h("p", "muted");
  const grid = h("div", "tiles");
  el.append(h("h1", "", "Plant"), note, grid);
  const tiles = new Map<string, Tile>();
  const stopPolling = every(
    2000,
    async () => {
      const machines = await plant();
      note.textContent = `${machines.length} machines, sorted by risk. A tile opens the machine's charts.`;
      render(machines);
    },
    (e) => (note.textContent = `plant: ${e instanceof Error ? e.message : String(e)}`),
  );

  const render = (machines: PlantMachine[]): void => {
    const sorted = [...machines].sort(
      (a, b) =>
        RISK_ORDER[a.risk_level] - RISK_ORDER[b.risk_level] || a.health_score - b.health_score || (a.machine_id < b.machine_id ? -1 : 1),
    );
    for (const m of sorted) {
      let t = tiles.get(m.machine_id);
      if (t === undefined) tiles.set(m.machine_id, (t = newTile(ctx, m.machine_id)));
      updateTile(t, m);
    }
    grid.replaceChildren(...sorted.map((m) => (tiles.get(m.machine_id) as Tile).el));
  };

  return {
    el,
    stop: () => {
      stopPolling();
      for (const t of tiles.values()) {
        t.unsubscribe();
        drawLoop.forget(t.spark);
      }
    },
  };
}

function newTile(ctx: ViewContext, machine: string): Tile {
  const el = h("a", "tile");
  el.href = `#/machine/${encodeURIComponent(machine)}`;
  el.dataset.machine = machine;
  const body = h("div");
  const spark = new Sparkline();
  el.append(body, spark.canvas);
  const unsubscribe = ctx.live.subscribe(`machine/${machine}`, (_data, frame) => {
    if (frame !== null) spark.add(frame, machine);
  });
  return { el, body, spark, unsubscribe };
}

function updateTile(t: Tile, m: PlantMachine): void {
  t.el.className = `tile risk-${m.risk_level}`;
  t.el.dataset.risk = m.risk_level;
  const p = m.prediction;
  const prediction =
    p === null ? "" : `<div>RUL ${esc(fmt(p.time_to_failure_hours, 1))} h · p(failure) ${esc(fmt(p.failure_probability, 2))}</div>`;
  t.body.innerHTML =
    `<div class="id">${esc(m.machine_id)} <span class="badge ${esc(m.risk_level)}">${esc(m.risk_level)}</span></div>` +
    `<div><span class="health">${esc(m.health_score)}</span> health</div>` +
    `<div class="alerts">${esc(m.open_alerts)} open alert${m.open_alerts === 1 ? "" : "s"} · ${esc(m.sensors.length)} sensors</div>${prediction}`;
}
