// A PNG picture with alt text. Why not ipywidgets' Image: it can carry no alt. Each frame is decoded before it
// replaces the shown one, so the picture never goes blank between frames; a late decode never wins over a newer
// frame.
function render({ model, el }) {
  const img = document.createElement("img");
  el.classList.add("pruneviz-picture-view");
  el.append(img);
  let shownUrl = null;
  let latest = 0;
  // its drawn size at most, scaled down (aspect kept) to a narrower output: never cut, never overflowing
  img.style.maxWidth = "100%";
  img.style.height = "auto";
  const size = () => {
    img.style.width = `${model.get("width")}px`;
    img.style.aspectRatio = `${model.get("width")} / ${model.get("height")}`;
  };
  const describe = () => { img.alt = model.get("alt"); };
  const show = async () => {
    const data = model.get("value");
    if (!data || !data.byteLength) return;
    const frame = ++latest;
    const url = URL.createObjectURL(new Blob([data], { type: "image/png" }));
    const loader = new Image();
    loader.src = url;
    try { await loader.decode(); } catch (error) { /* shown anyway: the browser reports what is wrong */ }
    if (frame !== latest) { URL.revokeObjectURL(url); return; }
    img.src = url;
    if (shownUrl) URL.revokeObjectURL(shownUrl);
    shownUrl = url;
  };
  model.on("change:value", show);
  model.on("change:alt", describe);
  model.on("change:width change:height", size);
  size();
  describe();
  show();
  return () => {
    model.off("change:value", show);
    model.off("change:alt", describe);
    model.off("change:width change:height", size);
    if (shownUrl) URL.revokeObjectURL(shownUrl);
  };
}
export default { render };
