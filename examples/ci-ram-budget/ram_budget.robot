*** Settings ***
Documentation     Guard a model's RAM budget in CI. Point MODEL at your int8-quantisable ONNX file:
...               robot --variable MODEL:models/kws.onnx --variable BOARD:stm32f746
...               --variable RAM_BUDGET:24K --outputdir build/robot examples/ci-ram-budget/
...               Record (or re-record) the baselines: add --variable MSFSIM_UPDATE_BASELINES:1
Library           msfsim.robotlib.MsfsimLibrary


*** Variables ***
${MODEL}           zoo:dscnn-kws
${BOARD}           stm32f746
${RAM_BUDGET}      24K
${MAX_OVERHEAD}    1.5
# measured (as `msfsim search`: candidate blocks compiled and run) or analytic (exact model, fast)
${COST}            measured
${BASELINES}       ${CURDIR}/baselines.json


*** Test Cases ***
Fused plan fits the RAM budget
    [Documentation]    The least-RAM plan within ${MAX_OVERHEAD}x the layer-by-layer cost (${COST}
    ...                search, as `msfsim search --max-overhead ${MAX_OVERHEAD}`), built as one
    ...                firmware and measured in the emulator (arena + stack + static RAM).
    Load Model    ${MODEL}
    Search Plan    ${BOARD}    objective=ram    max_overhead=${MAX_OVERHEAD}    cost=${COST}
    Measure Plan    unicorn
    Plan Should Fit Board
    Peak RAM Should Be At Most    ${RAM_BUDGET}

Fused plan computes what the model computes
    Outputs Should Be Bit Exact    unicorn

Instruction count has not regressed
    [Documentation]    Record once with `--variable MSFSIM_UPDATE_BASELINES:1` and commit
    ...                baselines.json; a new compiler or emulator version asks for a new
    ...                recording instead of comparing.
    Measurement Should Match Baseline    ${BASELINES}
