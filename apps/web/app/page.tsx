import Link from "next/link";

const steps = [
  {
    name: "Upload",
    text: "Send an .onnx file. Kiln hashes it, reads its inputs, outputs and opset, and rejects what will not run — with the reason.",
  },
  {
    name: "Build",
    text: "Pick a target and a precision. A worker compiles the graph: folds constants, fuses layers, plans memory to the byte, tunes kernels.",
  },
  {
    name: "Deploy",
    text: "Name a build and a policy: replicas from zero up, batch size, queue delay. Nothing loads until the first request needs it.",
  },
  {
    name: "Serve",
    text: "Call it over the KServe v2 protocol with an API key. Requests are batched on the fly and every answer is metered.",
  },
];

const features = [
  {
    title: "Scale to zero",
    text: "Idle deployments cost nothing; a cold start loads a prebuilt engine, never recompiles.",
  },
  {
    title: "Exact memory",
    text: "Each engine knows its device memory before it runs, so tenants pack safely into GPU slices.",
  },
  {
    title: "Open protocol",
    text: "KServe v2 / Open Inference Protocol over HTTP — JSON or binary tensors, sync or async with webhooks.",
  },
  {
    title: "Pay for use",
    text: "Usage rolls up hourly per deployment, with quotas and spend caps enforced in real time.",
  },
];

const example = `curl https://api.kiln.dev/v2/models/resnet50/infer \\
  -H "Authorization: Bearer kiln_live_…" \\
  -d '{"inputs":[{"name":"input","shape":[1,3,224,224],
       "datatype":"FP32","data":[…]}]}'`;

export default function Home() {
  return (
    <main>
      <header className="hero">
        <div className="landing-top">
          <p className="brand">
            <span className="mark" aria-hidden="true" />
            Kiln
          </p>
          <nav aria-label="Account" className="landing-nav">
            <Link href="/sign-in">Sign in</Link>
            <Link href="/sign-up" className="ui-button ui-button--primary">
              Get started
            </Link>
          </nav>
        </div>
        <h1>Your ONNX model, fired into a fast endpoint.</h1>
        <p className="lead">
          Kiln compiles models into optimized engines for CPUs and GPUs, then serves them as autoscaled, metered
          inference endpoints. Upload, build, deploy — and pay only for the milliseconds you use.
        </p>
      </header>

      <section aria-labelledby="how">
        <h2 id="how">How it works</h2>
        <ol className="steps">
          {steps.map((step, i) => (
            <li key={step.name}>
              <span className="step-number">{i + 1}</span>
              <h3>{step.name}</h3>
              <p>{step.text}</p>
            </li>
          ))}
        </ol>
      </section>

      <section aria-labelledby="call">
        <h2 id="call">One request away</h2>
        <pre className="code">
          <code>{example}</code>
        </pre>
      </section>

      <section aria-labelledby="why">
        <h2 id="why">Why Kiln</h2>
        <div className="features">
          {features.map((f) => (
            <div key={f.title} className="feature">
              <h3>{f.title}</h3>
              <p>{f.text}</p>
            </div>
          ))}
        </div>
      </section>

      <footer>Kiln · serverless inference · KServe v2 compatible</footer>
    </main>
  );
}
