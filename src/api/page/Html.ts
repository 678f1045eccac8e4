/**
 * The operator page's one document. Everything it shows is filled in by /page/app.js from the API; the
 * markup holds the landmarks, the forms and their labels, so the page reads in order without a script.
 */
export const html = String.raw`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>autopilot · operator</title>
<link rel="icon" href="/page/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/page/app.css">
<script src="/page/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <h1><a href="#/">autopilot</a> <span class="sub">operator</span></h1>
  <nav id="nav" class="nav" aria-label="Views" hidden><a href="#/">Missions and runs</a> <a id="nav-finetunes" href="#/finetunes" hidden>Fine-tunes</a></nav>
  <p id="who" class="who" hidden></p>
  <button id="sign-out" type="button" class="quiet" hidden>Sign out</button>
</header>
<div id="notice" class="notice" role="alert" hidden></div>
<main id="main" tabindex="-1">

<section id="sign-in" class="card narrow" aria-labelledby="sign-in-title" hidden>
  <h2 id="sign-in-title">Sign in</h2>
  <form id="sign-in-form" novalidate>
    <label for="token">API token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required spellcheck="false" aria-describedby="token-help">
    <p id="token-help" class="help">The admin token (<code>AUTOPILOT_API_TOKEN</code>) or a project token from <code>autopilot token create --project P</code>. It is kept in an HttpOnly cookie, never by this page.</p>
    <button type="submit">Sign in</button>
    <p id="sign-in-error" class="error" role="alert"></p>
  </form>
</section>

<section id="overview" aria-label="Overview" hidden>
  <section class="card" aria-labelledby="goal-title">
    <h2 id="goal-title">New goal</h2>
    <form id="goal-form" novalidate>
      <label for="goal">What should autopilot do?</label>
      <textarea id="goal" name="goal" rows="2" required maxlength="4000" placeholder="review this pull request for security bugs"></textarea>
      <button type="submit">Route the goal</button>
    </form>
    <div id="goal-result" class="goal-result" aria-live="polite"></div>
  </section>

  <section class="card" aria-labelledby="missions-title">
    <h2 id="missions-title">Missions</h2>
    <div class="scroll"><table id="missions">
      <caption class="sr-only">Missions of this project, newest first</caption>
      <thead><tr><th scope="col">Mission</th><th scope="col">Goal</th><th scope="col">Blueprint</th><th scope="col">Status</th><th scope="col" class="num">Cost</th><th scope="col">Age</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>

  <section class="card" aria-labelledby="runs-title">
    <h2 id="runs-title">Runs</h2>
    <div class="scroll"><table id="runs">
      <caption class="sr-only">Runs of this project, newest first</caption>
      <thead><tr><th scope="col">Run</th><th scope="col">Objective</th><th scope="col">Status</th><th scope="col" class="num">Iterations</th><th scope="col" class="num">Cost</th><th scope="col">Age</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>

  <section class="card" aria-labelledby="spend-title">
    <h2 id="spend-title">Spend</h2>
    <div class="charts">
      <figure>
        <figcaption id="cost-chart-title">Cost per run over time</figcaption>
        <div id="cost-chart" class="chart"></div>
      </figure>
      <figure>
        <figcaption id="model-chart-title">Spend per model</figcaption>
        <div id="model-chart" class="chart"></div>
      </figure>
    </div>
  </section>
</section>

<section id="detail" aria-labelledby="detail-title" hidden>
  <p><a href="#/">← All missions and runs</a></p>
  <h2 id="detail-title"></h2>
  <p id="detail-status" class="status-line" aria-live="polite"></p>
  <div class="actions">
    <button id="stop" type="button" hidden>Stop</button>
    <button id="cancel" type="button" class="danger" hidden>Cancel mission</button>
  </div>

  <section id="graph-card" class="card" aria-labelledby="graph-title" hidden>
    <h3 id="graph-title">Agent graph</h3>
    <div id="graph" class="graph"></div>
    <ul id="graph-list" class="graph-list" aria-label="Nodes and their states"></ul>
  </section>

  <div class="columns">
    <section class="card" aria-labelledby="budget-title">
      <h3 id="budget-title">Budget</h3>
      <div id="budget" class="budget"></div>
    </section>
    <section class="card" aria-labelledby="criteria-title">
      <h3 id="criteria-title">Success criteria</h3>
      <ul id="criteria" class="criteria"></ul>
    </section>
  </div>

  <section class="card" aria-labelledby="answer-title">
    <h3 id="answer-title">Answer</h3>
    <p id="answer-source" class="help"></p>
    <pre id="answer" class="answer" tabindex="0" aria-live="polite"></pre>
  </section>

  <section class="card" aria-labelledby="steps-title">
    <h3 id="steps-title">Steps</h3>
    <div class="scroll"><table id="steps">
      <caption class="sr-only">Each step's model calls, tokens, latency and cost</caption>
      <thead><tr><th scope="col">Step</th><th scope="col">Model</th><th scope="col" class="num">Tokens in</th><th scope="col" class="num">Tokens out</th><th scope="col" class="num">Latency</th><th scope="col" class="num">Cost</th><th scope="col">Note</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>

  <div class="columns">
    <section class="card" aria-labelledby="artifacts-title">
      <h3 id="artifacts-title">Artifacts</h3>
      <ul id="artifacts" class="plain"></ul>
    </section>
    <section class="card" aria-labelledby="events-title">
      <h3 id="events-title">Events <span id="stream-state" class="badge"></span></h3>
      <ol id="events" class="events" reversed></ol>
    </section>
  </div>
</section>

<section id="finetunes" aria-labelledby="finetunes-title" hidden>
  <p><a href="#/">← All missions and runs</a></p>
  <h2 id="finetunes-title" tabindex="-1">Fine-tunes</h2>
  <p class="help">A fine-tune's model is replayed on its dataset's held-out samples beside the model its scope uses now before it takes any traffic. Operators promote and roll back with <code>autopilot finetune promote ID</code> and <code>autopilot finetune rollback ID</code>.</p>
  <p id="ft-error" class="error" role="alert"></p>
  <section class="card" aria-labelledby="ft-jobs-title">
    <h3 id="ft-jobs-title">Jobs</h3>
    <div class="scroll"><table id="ft-jobs">
      <caption class="sr-only">Fine-tune jobs, newest first</caption>
      <thead><tr><th scope="col">Job</th><th scope="col">Dataset</th><th scope="col">Status</th><th scope="col">Model</th><th scope="col">Verdict</th><th scope="col">Traffic</th><th scope="col">Created</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section id="ft-detail" aria-labelledby="ft-title" hidden>
    <h3 id="ft-title" tabindex="-1"></h3>
    <p id="ft-status" class="status-line"></p>
    <div class="columns">
      <section class="card" aria-labelledby="ft-report-title">
        <h4 id="ft-report-title">Evaluation: candidate and baseline</h4>
        <div id="ft-report"></div>
      </section>
      <section class="card" aria-labelledby="ft-curve-title">
        <h4 id="ft-curve-title">Cost per step over time</h4>
        <div id="ft-curve" class="chart"></div>
        <p id="ft-curve-summary" class="help"></p>
      </section>
    </div>
    <div class="columns">
      <section class="card" aria-labelledby="ft-routes-title">
        <h4 id="ft-routes-title">Routes</h4>
        <ul id="ft-routes" class="plain"></ul>
      </section>
      <section class="card" aria-labelledby="ft-events-title">
        <h4 id="ft-events-title">Log</h4>
        <ol id="ft-events" class="events"></ol>
      </section>
    </div>
  </section>
</section>

</main>
</body>
</html>
`
