// A slider that screen readers can name and read: a native <input type="range"> with a <label> (its accessible
// name), aria-valuetext with the shown decimals, and an <output> beside it. The keyboard (arrows, Page Up/Down,
// Home, End) is the browser's own. Why not ipywidgets' FloatSlider: its noUiSlider handle takes no label.
function render({ model, el }) {
  const id = `pruneviz-slider-${Math.random().toString(36).slice(2)}`;
  const label = document.createElement("label");
  const input = document.createElement("input");
  const output = document.createElement("output");
  label.htmlFor = id;
  input.id = id;
  input.type = "range";
  // its keys (arrows, Home, End, Page Up/Down) are the slider's, not JupyterLab's shortcuts (Lumino's marker)
  input.setAttribute("data-lm-suppress-shortcuts", "true");
  output.htmlFor = id;
  output.setAttribute("aria-hidden", "true"); // the slider announces the value itself
  el.classList.add("pruneviz-slider-view");
  el.append(label, input, output);

  const text = (value) => Number(value).toFixed(model.get("decimals"));
  const show = () => {
    label.textContent = model.get("description");
    label.style.width = model.get("description_width");
    input.min = String(model.get("min"));
    input.max = String(model.get("max"));
    input.step = String(model.get("step"));
    input.value = String(model.get("value"));
    input.disabled = model.get("disabled");
    input.title = model.get("tooltip") || "";
    const shown = text(model.get("value"));
    input.setAttribute("aria-valuetext", shown);
    output.textContent = shown;
  };
  const send = () => {
    model.set("value", Number(input.value));
    model.save_changes();
  };
  input.addEventListener("input", () => {
    const shown = text(input.value);
    output.textContent = shown;
    input.setAttribute("aria-valuetext", shown);
    if (model.get("continuous_update")) send();
  });
  input.addEventListener("change", send); // the end of a drag, or every step when continuous_update is off
  const events = "change:value change:min change:max change:step change:disabled change:description " +
                 "change:decimals change:tooltip change:description_width";
  model.on(events, show);
  show();
  return () => model.off(events, show);
}
export default { render };
