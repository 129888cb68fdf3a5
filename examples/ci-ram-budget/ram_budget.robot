*** Settings ***
Documentation     Guard a model's RAM budget in CI. Point MODEL at your int8-quantisable ONNX file:
...               robot --variable MODEL:models/kws.onnx --variable BOARD:stm32f746
...               --variable RAM_BUDGET:24K --outputdir build/robot examples/ci-ram-budget/
Library           msfsim.robotlib.MsfsimLibrary


*** Variables ***
${MODEL}           zoo:dscnn-kws
${BOARD}           stm32f746
${RAM_BUDGET}      24K
${MAX_OVERHEAD}    1.5
${BASELINES}       ${CURDIR}/baselines.json


*** Test Cases ***
Fused plan fits the RAM budget
    [Documentation]    Least-RAM plan within ${MAX_OVERHEAD}x the layer-by-layer MACs, built as one
    ...                firmware and measured in the emulator (arena + stack + static RAM).
    Load Model    ${MODEL}
    Search Plan    ${BOARD}    objective=ram    max_overhead=${MAX_OVERHEAD}
    Measure Plan    unicorn
    Plan Should Fit Board
    Peak RAM Should Be At Most    ${RAM_BUDGET}

Fused plan computes what the model computes
    Outputs Should Be Bit Exact    unicorn

Instruction count has not regressed
    [Documentation]    Record once with MSFSIM_UPDATE_BASELINES=1 and commit baselines.json; a new
    ...                compiler or emulator version asks for a new recording instead of comparing.
    Measurement Should Match Baseline    ${BASELINES}
